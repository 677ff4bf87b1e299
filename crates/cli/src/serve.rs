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
    /// Folder relative upstream package repositories are found from.
    #[arg(long, default_value = ".")]
    upstream_base: PathBuf,
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
    let cfg = atoll_server::Config {
        database: a.database,
        repo: a.repo,
        upstream_base: std::path::absolute(&a.upstream_base)?,
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
