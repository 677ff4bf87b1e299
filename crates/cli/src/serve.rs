//! `atoll serve` and `atoll token create`: flags in, the server crate does the work.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// `sqlite:PATH` (created when missing) or `postgres://user:pass@host/db`.
    #[arg(long, env = "ATOLL_DATABASE", default_value = "sqlite:atoll.db")]
    database: String,
    /// The fleet repository (created when missing).
    #[arg(long)]
    repo: PathBuf,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
    /// Read each cluster's GitOps agent through its kubeconfig Secret in the management
    /// cluster of KUBECONFIG: sync state in the inventory, placements, metrics and events.
    #[arg(long)]
    observe: bool,
    /// Create a missing repository bare (no work tree: what a large fleet wants).
    #[arg(long)]
    bare: bool,
    /// Folder relative upstream package repositories are found from.
    #[arg(long, default_value = ".")]
    upstream_base: PathBuf,
    /// A folder under which local upstream package repositories may be read (repeatable).
    /// Default: the upstream base. Anything else an Application names is refused.
    #[arg(long = "upstream-root", value_name = "DIR")]
    upstream_roots: Vec<PathBuf>,
    /// Accept OIDC JWTs from this issuer (also needs --oidc-jwks).
    #[arg(long, requires = "oidc_jwks")]
    oidc_issuer: Option<String>,
    /// The issuer's JSON Web Key Set, as a file.
    #[arg(long, requires = "oidc_issuer")]
    oidc_jwks: Option<PathBuf>,
    /// Required `aud` of the JWTs.
    #[arg(long)]
    oidc_audience: Option<String>,
    /// The claim listing the user's groups.
    #[arg(long, default_value = "groups")]
    oidc_groups_claim: String,
    /// GROUP=TEAM:ROLE (repeatable): members of GROUP act for TEAM with ROLE; the first
    /// of a user's groups that maps wins.
    #[arg(long = "oidc-group")]
    oidc_groups: Vec<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (only its hash is stored).
    Create {
        #[arg(long, env = "ATOLL_DATABASE", default_value = "sqlite:atoll.db")]
        database: String,
        /// Who it is for (recorded as the actor of their changes).
        #[arg(long)]
        name: String,
        /// The team it acts for.
        #[arg(long)]
        team: String,
        /// reader, contributor or admin.
        #[arg(long)]
        role: String,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let oidc = match (&a.oidc_issuer, &a.oidc_jwks) {
        (Some(iss), Some(jwks)) => Some(
            atoll_server::oidc::Oidc::load(
                iss,
                a.oidc_audience.as_deref(),
                jwks,
                &a.oidc_groups_claim,
                &a.oidc_groups,
            )
            .map_err(anyhow::Error::msg)?,
        ),
        _ => None,
    };
    let cfg = atoll_server::Config {
        database: a.database,
        repo: a.repo,
        bare: a.bare,
        observe: a.observe,
        remote: a.remote.resolve(None)?,
        upstream_base: std::path::absolute(&a.upstream_base)?,
        upstream_roots: if a.upstream_roots.is_empty() {
            vec![std::path::absolute(&a.upstream_base)?]
        } else {
            a.upstream_roots.clone()
        },
        oidc,
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        eprintln!(
            "atoll serve: listening on http://{}",
            listener.local_addr()?
        );
        atoll_server::serve(cfg, listener)
            .await
            .map_err(|p| anyhow::anyhow!("{}: {}", p.title, p.detail))
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn token(t: TokenCommand) -> Result<ExitCode> {
    match t {
        TokenCommand::Create {
            database,
            name,
            team,
            role,
        } => {
            let role: atoll_inventory::Role = role.parse().map_err(anyhow::Error::msg)?;
            let secret = runtime()?.block_on(async {
                let store = atoll_inventory::Store::open(&database).await?;
                store.create_token(&name, &team, role).await
            })?;
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
