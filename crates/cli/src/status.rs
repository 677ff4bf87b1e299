//! `atoll status`: the fleet as its clusters see it, as a kubectl-like table (or JSON).

use anyhow::{Context, Result};
use atoll_gitops::FleetRepo;
use atoll_status::{Options, SyncState};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub fn run(repo: &Path, json: bool, timeout: u64, drift: bool) -> Result<ExitCode> {
    let fleet = FleetRepo::open_if_exists(repo)?
        .with_context(|| format!("{} is not a fleet repository", repo.display()))?;
    let targets = atoll_status::targets(&fleet)?;
    let head = fleet
        .head()?
        .map(|(c, _)| c.to_string())
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let syncs = rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("the management cluster (KUBECONFIG or in-cluster configuration)")?;
        anyhow::Ok(
            atoll_status::collect(
                &client,
                Some(&fleet),
                &targets,
                &Default::default(),
                &Options {
                    timeout: Duration::from_secs(timeout),
                    drift,
                    ..Default::default()
                },
            )
            .await,
        )
    })?;
    let apps = atoll_status::applications(&fleet, &targets, &syncs);
    if json {
        let apps: Vec<serde_json::Value> = apps
            .iter()
            .map(|(a, (ok, n))| serde_json::json!({"application": a, "atDesiredRevision": ok, "clusters": n}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "head": head, "clusters": syncs, "applications": apps,
            }))?
        );
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let paint = |s: SyncState, text: String| {
            if !color {
                return text;
            }
            let code = match s {
                SyncState::Ready => "32",
                SyncState::Progressing => "33",
                _ => "31",
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        };
        println!(
            "{:<24} {:<12} {:<13} {:>6}  {:<20} MESSAGE",
            "CLUSTER", "STATE", "REVISION", "BEHIND", "LAST CONTACT"
        );
        for s in &syncs {
            let state = paint(s.state, format!("{:<12}", s.state.as_str()));
            let mut msg = s.message.replace('\n', " ");
            if !s.drift.is_empty() {
                msg = format!("drift: {}; {msg}", s.drift.join(", "));
            }
            println!(
                "{:<24} {state} {:<13} {:>6}  {:<20} {}",
                s.cluster,
                s.revision.as_deref().map(|r| &r[..12]).unwrap_or("-"),
                s.behind
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.last_contact.as_deref().unwrap_or("never"),
                msg.chars().take(100).collect::<String>()
            );
        }
        println!();
        println!("{:<40} AT HEAD", "APPLICATION");
        for (a, (ok, n)) in &apps {
            println!("{a:<40} {ok}/{n}");
        }
        println!("\nHEAD {}", &head[..head.len().min(12)]);
    }
    Ok(ExitCode::SUCCESS)
}
