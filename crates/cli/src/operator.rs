//! `atoll operator run|manifests`: flags in, the operator crate does the work.

use anyhow::{Context, Result};
use atoll_operator::fleet::{Fault, Settings};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Watch the atoll kinds in the cluster of the current kubeconfig (or in-cluster
    /// configuration), commit rendered packages to the repository, apply Cluster API objects.
    Run {
        /// The fleet repository (created if missing).
        #[arg(long, env = "ATOLL_REPO")]
        repo: PathBuf,
        /// Create a missing repository bare.
        #[arg(long)]
        bare: bool,
        /// Folder relative upstream package repositories are found from.
        #[arg(long, default_value = ".")]
        upstream_base: PathBuf,
        /// A folder under which local upstream package repositories may be read
        /// (repeatable). Default: the upstream base.
        #[arg(long = "upstream-root", value_name = "DIR")]
        upstream_roots: Vec<PathBuf>,
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        /// Namespace of the leader-election Lease.
        #[arg(long, default_value = "atoll-system")]
        lease_namespace: String,
        /// Name of the leader-election Lease.
        #[arg(long, default_value = "atoll-operator")]
        lease_name: String,
        /// This replica's identity (the pod name in a Deployment). Default: host name and PID.
        #[arg(long, env = "ATOLL_IDENTITY")]
        identity: Option<String>,
        /// Seconds a leader holds the Lease without renewing it.
        #[arg(long, default_value_t = 15)]
        lease_duration: u64,
        /// Seconds between full passes when nothing changes.
        #[arg(long, default_value_t = 600)]
        resync: u64,
    },
    /// Print the install manifests: CRDs, Namespace, ServiceAccount, RBAC, volume, Deployment.
    Manifests {
        #[arg(long, default_value = "atoll-system")]
        namespace: String,
        #[arg(long)]
        image: Option<String>,
        #[arg(long, default_value_t = 1)]
        replicas: u32,
        /// The Fleet's management namespace (the clusters' kubeconfig Secrets are read there).
        #[arg(long, default_value = "atoll-system")]
        management_namespace: String,
    },
}

pub fn run(cmd: OperatorCommand) -> Result<ExitCode> {
    match cmd {
        OperatorCommand::Manifests {
            namespace,
            image,
            replicas,
            management_namespace,
        } => {
            let mut o = atoll_operator::manifests::Options {
                namespace,
                replicas,
                management_namespace,
                ..Default::default()
            };
            if let Some(i) = image {
                o.image = i;
            }
            let objs = atoll_operator::manifests::manifests(&o);
            print!("{}", atoll_model::yaml::to_yaml_stream(objs.iter()));
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Run {
            repo,
            bare,
            upstream_base,
            upstream_roots,
            remote,
            lease_namespace,
            lease_name,
            identity,
            lease_duration,
            resync,
        } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("ATOLL_LOG")
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            // Test hook: hang at a named point so a test can kill the operator there.
            let fault = match std::env::var("ATOLL_FAULT").ok().as_deref() {
                Some("mid-apply") => Some(Fault::MidApply),
                Some(other) => anyhow::bail!("ATOLL_FAULT: unknown fault point `{other}`"),
                None => None,
            };
            let identity = identity.unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "atoll".into());
                format!("{host}-{}", std::process::id())
            });
            let upstream_base = std::path::absolute(&upstream_base)?;
            let upstream_roots = if upstream_roots.is_empty() {
                vec![upstream_base.clone()]
            } else {
                upstream_roots
            };
            let cfg = atoll_operator::Config {
                settings: Settings {
                    repo,
                    bare,
                    upstream_base,
                    upstream_roots: atoll_pipeline::canonical_roots(upstream_roots),
                    remote: remote.resolve(None)?,
                    fault,
                },
                lease_namespace,
                lease_name,
                identity,
                lease_duration: Duration::from_secs(lease_duration.max(2)),
                resync: Duration::from_secs(resync.max(1)),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let client = kube::Client::try_default()
                    .await
                    .context("connecting to the management cluster (kubeconfig or in-cluster)")?;
                atoll_operator::run(client, cfg).await?;
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
