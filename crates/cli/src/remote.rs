//! The flags that say where the fleet repository is published (shared by `render`,
//! `operator run` and `serve`).

use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct RemoteArgs {
    /// Push every commit to this Git remote (fast-forward only; when another writer pushed
    /// first, render again on top and retry). It is the repository the agents pull: with no
    /// URL, `render` takes the Fleet's `spec.gitops.repoURL`.
    #[arg(long, num_args = 0..=1, value_name = "URL")]
    pub remote: Option<Option<String>>,
    /// The branch pushed to (default: the Fleet's `spec.gitops.branch`, or `main`).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Credentials for the remote: a file of `token=…`, `username=…` + `password=…` or
    /// `ssh-key=PATH` lines. Without it: ATOLL_GIT_TOKEN, ATOLL_GIT_USERNAME +
    /// ATOLL_GIT_PASSWORD or ATOLL_GIT_SSH_KEY. Never logged.
    #[arg(long, value_name = "FILE")]
    pub git_credentials: Option<PathBuf>,
}

impl RemoteArgs {
    /// The remote, with the Fleet's URL and branch as defaults.
    pub fn resolve(
        &self,
        fleet: Option<&atoll_model::FleetSpec>,
    ) -> anyhow::Result<Option<atoll_gitops::Remote>> {
        let Some(url) = &self.remote else {
            return Ok(None);
        };
        let url = match url {
            Some(u) => u.clone(),
            None => fleet
                .and_then(|f| f.gitops.repo_url.clone())
                .ok_or_else(|| {
                    anyhow::anyhow!("--remote without a URL needs the Fleet's spec.gitops.repoURL")
                })?,
        };
        let branch = self
            .branch
            .clone()
            .or_else(|| fleet.and_then(|f| f.gitops.branch.clone()))
            .unwrap_or_else(|| "main".into());
        let auth = atoll_gitops::Auth::from_env_or_file(self.git_credentials.as_deref())
            .map_err(|e| anyhow::anyhow!("git credentials: {e}"))?;
        Ok(Some(atoll_gitops::Remote { url, branch, auth }))
    }
}
