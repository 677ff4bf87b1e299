//! Publishing the fleet repository to a Git server: fetch what the server holds, push what
//! atoll committed — fast-forward only, never forced. The transport is Git's own (`git fetch`,
//! `git push`: HTTP(S) and SSH, the server's redirects and the system's CA store, as a platform
//! team's Git server expects); gix still writes every object and commit.
//!
//! Credentials never appear in a command line, a URL atoll prints, or a log: HTTP basic and
//! bearer credentials go to Git as an `http.extraHeader` through `GIT_CONFIG_*` environment
//! variables, an SSH key through `GIT_SSH_COMMAND`. No system or user Git configuration is
//! read.

use crate::{FleetRepo, GitError, ObjectId, err};
use std::path::PathBuf;
use std::process::Command;

/// Where the fleet repository is published.
#[derive(Clone, Debug)]
pub struct Remote {
    /// The Git server's URL (https, ssh, or a local path).
    pub url: String,
    /// The branch atoll pushes to.
    pub branch: String,
    /// How to authenticate.
    pub auth: Auth,
}

/// How atoll authenticates to the Git server.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials (a local path, or a server that lets anyone push).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        user: String,
        /// The password or access token.
        password: String,
    },
    /// An HTTP bearer token.
    Bearer(String),
    /// A private key file for SSH remotes.
    SshKey(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself.
        f.write_str(match self {
            Auth::None => "none",
            Auth::Basic { .. } => "basic (redacted)",
            Auth::Bearer(_) => "bearer (redacted)",
            Auth::SshKey(_) => "ssh key",
        })
    }
}

impl Auth {
    /// Credentials from the environment (`ATOLL_GIT_TOKEN`; `ATOLL_GIT_USERNAME` +
    /// `ATOLL_GIT_PASSWORD`; `ATOLL_GIT_SSH_KEY`) or, when `file` is given, from it: lines
    /// `token=…`, `username=…`, `password=…` or `ssh-key=PATH`.
    pub fn from_env_or_file(file: Option<&std::path::Path>) -> Result<Auth, String> {
        let mut kv: std::collections::BTreeMap<String, String> = Default::default();
        if let Some(f) = file {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (k, v) = line.split_once('=').ok_or_else(|| {
                    format!(
                        "{}:{}: expected key=value (token, username, password, ssh-key)",
                        f.display(),
                        i + 1
                    )
                })?;
                kv.insert(k.trim().to_string(), v.trim().to_string());
            }
        } else {
            for (k, env) in [
                ("token", "ATOLL_GIT_TOKEN"),
                ("username", "ATOLL_GIT_USERNAME"),
                ("password", "ATOLL_GIT_PASSWORD"),
                ("ssh-key", "ATOLL_GIT_SSH_KEY"),
            ] {
                if let Ok(v) = std::env::var(env)
                    && !v.is_empty()
                {
                    kv.insert(k.into(), v);
                }
            }
        }
        Ok(if let Some(t) = kv.get("token") {
            Auth::Bearer(t.clone())
        } else if let Some(p) = kv.get("password") {
            Auth::Basic {
                user: kv
                    .get("username")
                    .cloned()
                    .unwrap_or_else(|| "atoll".into()),
                password: p.clone(),
            }
        } else if let Some(k) = kv.get("ssh-key") {
            Auth::SshKey(k.into())
        } else {
            Auth::None
        })
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The remote branch now points at our HEAD.
    Pushed,
    /// It already did.
    UpToDate,
    /// The remote branch moved (another writer): fetch, render again on top, push again.
    Rejected,
}

/// `url` without any `user:password@` part, for messages.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_string(),
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for (i, shift) in [18, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                out.push(T[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The ref a fetch of the remote branch lands in.
fn tracking_ref(branch: &str) -> String {
    format!("refs/atoll/remote/{branch}")
}

impl FleetRepo {
    fn git(&self, remote: &Remote) -> Command {
        let mut c = Command::new("git");
        c.arg("--git-dir")
            .arg(self.git_dir())
            // A server that stops answering must not hold the writer (and the lock) forever:
            // under 1 KB/s for a minute ends the transfer with an error.
            .args([
                "-c",
                "http.lowSpeedLimit=1000",
                "-c",
                "http.lowSpeedTime=60",
            ])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS");
        let header = match &remote.auth {
            Auth::Basic { user, password } => Some(format!(
                "Authorization: Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            )),
            Auth::Bearer(t) => Some(format!("Authorization: Bearer {t}")),
            _ => None,
        };
        if let Some(h) = header {
            c.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", h);
        }
        if let Auth::SshKey(k) = &remote.auth {
            c.env(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes",
                    k.display()
                ),
            );
        }
        c
    }

    /// Runs git; returns whether it succeeded and what it printed (both streams: `push
    /// --porcelain` reports refs on stdout), with any credentials in the URL hidden.
    fn run_git(&self, remote: &Remote, args: &[&str]) -> Result<(bool, String), GitError> {
        let out = self.git(remote).args(args).output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .replace(&remote.url, &display_url(&remote.url));
        Ok((out.status.success(), text))
    }

    /// Fetches the remote branch; returns the commit it points at (`None`: no such branch
    /// yet).
    pub fn fetch(&self, remote: &Remote) -> Result<Option<ObjectId>, GitError> {
        let refspec = format!(
            "+refs/heads/{}:{}",
            remote.branch,
            tracking_ref(&remote.branch)
        );
        let (ok, stderr) = self.run_git(
            remote,
            &["fetch", "--quiet", "--no-tags", &remote.url, &refspec],
        )?;
        if !ok {
            if stderr.contains("couldn't find remote ref") {
                return Ok(None);
            }
            return Err(err(
                self.git_dir(),
                format!("fetching {}: {}", display_url(&remote.url), stderr.trim()),
            ));
        }
        let mut r = self
            .repo
            .find_reference(tracking_ref(&remote.branch).as_str())
            .map_err(|e| err(self.git_dir(), e))?;
        Ok(Some(
            r.peel_to_id().map_err(|e| err(self.git_dir(), e))?.detach(),
        ))
    }

    /// Pushes HEAD to the remote branch, fast-forward only.
    pub fn push(&self, remote: &Remote) -> Result<Pushed, GitError> {
        let Some((head, _)) = self.head()? else {
            return Ok(Pushed::UpToDate);
        };
        let refspec = format!("{head}:refs/heads/{}", remote.branch);
        let (ok, stderr) = self.run_git(
            remote,
            &["push", "--quiet", "--porcelain", &remote.url, &refspec],
        )?;
        if ok {
            // Remember where the remote is now.
            let _ = self.repo.reference(
                tracking_ref(&remote.branch).as_str(),
                head,
                gix::refs::transaction::PreviousValue::Any,
                "atoll: pushed",
            );
            return Ok(if stderr.contains("up to date") {
                Pushed::UpToDate
            } else {
                Pushed::Pushed
            });
        }
        if [
            "[rejected]",
            "non-fast-forward",
            "fetch first",
            "stale info",
            "Updates were rejected",
        ]
        .iter()
        .any(|m| stderr.contains(m))
        {
            return Ok(Pushed::Rejected);
        }
        Err(err(
            self.git_dir(),
            format!("pushing to {}: {}", display_url(&remote.url), stderr.trim()),
        ))
    }

    /// Whether `a` is `b` or one of its ancestors.
    pub fn is_ancestor(&self, a: ObjectId, b: ObjectId) -> Result<bool, GitError> {
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![b];
        while let Some(id) = todo.pop() {
            if id == a {
                return Ok(true);
            }
            if !seen.insert(id) || seen.len() > 100_000 {
                continue;
            }
            let obj = self
                .repo
                .find_object(id)
                .map_err(|e| err(self.git_dir(), e))?;
            let c = obj.into_commit();
            let decoded = c.decode().map_err(|e| err(self.git_dir(), e))?;
            todo.extend(decoded.parents());
        }
        Ok(false)
    }

    /// How many commits `from` is behind `to` (commits reachable from `to` and not from
    /// `from`); `None` when `from` is not in `to`'s history.
    pub fn commits_between(&self, from: ObjectId, to: ObjectId) -> Result<Option<usize>, GitError> {
        let mut n = 0;
        let mut id = to;
        loop {
            if id == from {
                return Ok(Some(n));
            }
            let obj = match self.repo.find_object(id) {
                Ok(o) => o,
                Err(_) => return Ok(None),
            };
            let c = obj.into_commit();
            let decoded = c.decode().map_err(|e| err(self.git_dir(), e))?;
            match decoded.parents().next() {
                Some(p) if n < 100_000 => {
                    id = p;
                    n += 1;
                }
                _ => return Ok(None),
            }
        }
    }

    /// Points HEAD's branch at `commit` (what the remote holds), leaving our own commits
    /// behind: the caller renders its declarations again on top. A work tree is brought in
    /// line by the same repair an interrupted render gets.
    pub fn reset_to(&self, commit: ObjectId) -> Result<(), GitError> {
        let head_ref = self
            .repo
            .head_name()
            .map_err(|e| err(self.git_dir(), e))?
            .map(|n| n.as_bstr().to_string())
            .unwrap_or_else(|| "refs/heads/main".into());
        if self.repo.workdir().is_some() {
            self.begin_checkout(commit, std::iter::empty())?;
        }
        self.repo
            .reference(
                head_ref.as_str(),
                commit,
                gix::refs::transaction::PreviousValue::Any,
                "atoll: take the remote's state",
            )
            .map_err(|e| err(self.git_dir(), e))?;
        self.repair_work_tree()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_sight() {
        assert_eq!(base64(b"atoll:s3cret"), "YXRvbGw6czNjcmV0");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(
            display_url("https://bob:hunter2@git.example.net/fleet.git"),
            "https://git.example.net/fleet.git"
        );
        assert_eq!(
            display_url("https://git.example.net/a@b/fleet.git"),
            "https://git.example.net/a@b/fleet.git"
        );
        let shown = format!(
            "{:?}",
            Auth::Basic {
                user: "u".into(),
                password: "p4ss".into()
            }
        );
        assert!(!shown.contains("p4ss"));
    }
}
