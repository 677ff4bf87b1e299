//! Paths that cannot escape their root. Every path atoll writes — a file of a commit, a file
//! of the work tree, a file copied from an upstream package — is a [`RepoPath`]: relative,
//! `/`-separated, each part a [`check_name`]d entry name. `..`, `.`, `.git` (in any letter
//! case, and the names Windows and macOS file systems read as `.git`), empty parts, `\`,
//! NUL and control characters never get through, so nothing lands outside the tree it is
//! written into.

use std::fmt;

pub use atoll_layout::OWNED_ROOTS;

/// Why an entry name is refused, if it is.
pub fn check_name(name: &[u8]) -> Result<(), String> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() {
        return Err("an empty name".into());
    }
    if name == b"." || name == b".." {
        return Err(format!("`{shown}` (a relative folder reference)"));
    }
    if let Some(b) = name
        .iter()
        .find(|b| **b == b'/' || **b == b'\\' || **b == 0 || **b < 0x20 || **b == 0x7f)
    {
        return Err(format!(
            "`{}` holds a forbidden byte 0x{b:02x} (`/`, `\\`, NUL or a control character)",
            shown.escape_debug()
        ));
    }
    if std::str::from_utf8(name).is_err() {
        return Err(format!("`{shown}` is not UTF-8"));
    }
    // `.git` as Git itself guards it: case-insensitive, with the trailing dots and spaces
    // Windows drops, its 8.3 short name, and the characters HFS+ ignores.
    let folded: String = shown
        .chars()
        .filter(|c| !matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}'))
        .collect::<String>()
        .trim_end_matches(['.', ' '])
        .to_ascii_lowercase();
    if folded == ".git" || folded == "git~1" {
        return Err(format!("`{shown}` (Git's own folder)"));
    }
    Ok(())
}

/// A relative path of checked names, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

/// A path that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path `{path}`: {why}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub why: String,
}

impl RepoPath {
    /// Checks every part of `path` (a trailing `/` naming a folder is allowed).
    pub fn new(path: &str) -> Result<RepoPath, PathError> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let fail = |why: String| PathError {
            path: path.escape_debug().to_string(),
            why,
        };
        if trimmed.is_empty() {
            return Err(fail("an empty path".into()));
        }
        for part in trimmed.split('/') {
            check_name(part.as_bytes()).map_err(fail)?;
        }
        Ok(RepoPath(trimmed.to_string()))
    }

    /// A path of the fleet repository that atoll may write: under one of [`OWNED_ROOTS`].
    pub fn owned(path: &str) -> Result<RepoPath, PathError> {
        let p = RepoPath::new(path)?;
        let top = p.0.split('/').next().unwrap_or("");
        if !OWNED_ROOTS.contains(&top) {
            return Err(PathError {
                path: path.to_string(),
                why: format!("atoll writes only under {}/", OWNED_ROOTS.join("/, ")),
            });
        }
        Ok(p)
    }

    /// The path, `/`-separated, relative to the repository root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This path under `root` on disk.
    pub fn under(&self, root: &std::path::Path) -> std::path::PathBuf {
        let mut p = root.to_path_buf();
        p.extend(self.0.split('/'));
        p
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_escapes() {
        for bad in [
            "..",
            ".",
            "",
            "a/../b",
            "a//b",
            ".git",
            ".GIT",
            "a/.Git/config",
            ".git.",
            ".git ",
            "git~1",
            ".g\u{200c}it",
            "a\\b",
            "a\0b",
            "a\nb",
            "/abs",
        ] {
            assert!(RepoPath::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "a",
            "a/b.yaml",
            "clusters/x/",
            ".gitignore",
            "..a",
            "a..",
            "git",
        ] {
            assert!(RepoPath::new(good).is_ok(), "{good:?} refused");
        }
        assert!(RepoPath::owned("clusters/x/a.yaml").is_ok());
        assert!(RepoPath::owned("README.md").is_err());
        assert!(RepoPath::owned("hooks/x").is_err());
    }
}
