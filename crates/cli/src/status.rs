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
    let (capi, syncs) = rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("the management cluster (KUBECONFIG or in-cluster configuration)")?;
        let capi = atoll_status::capi_clusters(&client, &targets).await;
        anyhow::Ok((
            capi,
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
        ))
    })?;
    let apps = atoll_status::applications(&fleet, &targets, &syncs);
    if json {
        let apps: Vec<serde_json::Value> = apps
            .iter()
            .map(|(a, (ok, n))| serde_json::json!({"application": a, "atDesiredRevision": ok, "clusters": n}))
            .collect();
        let mut clusters = serde_json::to_value(&syncs)?;
        for c in clusters.as_array_mut().into_iter().flatten() {
            if let Some(k) = c["cluster"].as_str().and_then(|n| capi.get(n)) {
                c["phase"] = serde_json::json!(k.phase);
                c["machines"] = serde_json::to_value(&k.machines)?;
            }
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "head": head, "clusters": clusters, "applications": apps,
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
            "{:<24} {:<12} {:<5} {:<7} {:<9} {:<12} {:<13} {:>6}  {:<20} MESSAGE",
            "CLUSTER",
            "PHASE",
            "CP",
            "WORKERS",
            "VERSION",
            "STATE",
            "REVISION",
            "BEHIND",
            "LAST CONTACT"
        );
        for s in &syncs {
            let state = paint(s.state, format!("{:<12}", s.state.as_str()));
            let mut msg = s.message.replace('\n', " ");
            if !s.drift.is_empty() {
                msg = format!("drift: {}; {msg}", s.drift.join(", "));
            }
            let k = capi.get(&s.cluster);
            let m = k.map(|k| &k.machines);
            // The nodes' own word when they agree; several versions while an upgrade rolls.
            let version = s
                .nodes
                .as_ref()
                .map(|n| match n.version() {
                    Some(v) => v.to_string(),
                    None if n.versions.is_empty() => "-".into(),
                    None => "mixed".into(),
                })
                .unwrap_or_else(|| "-".into());
            println!(
                "{:<24} {:<12} {:<5} {:<7} {:<9} {state} {:<13} {:>6}  {:<20} {}",
                s.cluster,
                k.and_then(|k| k.phase.as_deref()).unwrap_or("-"),
                m.and_then(|m| m.control_plane.as_deref()).unwrap_or("-"),
                m.and_then(|m| m.workers.as_deref()).unwrap_or("-"),
                version,
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
