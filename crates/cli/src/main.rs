//! The `atoll` command line: a thin shell over the model, engine and Git crates.

use anyhow::{Context, Result};
use atoll_model::Model;
use atoll_pipeline::plan::{ChangeKind, ClusterPlan, PlanStatus};
use atoll_pipeline::{Failure, Options, Pipeline, Reuse};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

// A fleet is hundreds of thousands of small strings and maps, built on every core at once:
// glibc's allocator spent more time in its locks and `malloc_consolidate` than atoll in its
// work (one-cluster plan at 10,000 clusters: 0.19 s with glibc, 0.10 s with mimalloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod operator;
mod remote;
mod serve;
mod status;

#[derive(Parser)]
#[command(
    name = "atoll",
    version,
    about = "Fleet declarations in, per-cluster packages in Git out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check declarations: syntax, types, references, profile cycles, IPAM, port clashes.
    Validate {
        /// YAML files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        sources: SourceArgs,
    },
    /// Show, per cluster, what a render would change in the repository, without writing.
    Plan {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The fleet repository (it need not exist yet).
        #[arg(long)]
        repo: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Show the text diff of each changed file.
        #[arg(long)]
        diff: bool,
        /// Neither read nor write the cache in the repository's Git directory.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        sources: SourceArgs,
    },
    /// Render the fleet and commit it to the repository (created if missing).
    Render {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        repo: PathBuf,
        /// A line added to the commit message (why this change).
        #[arg(short, long)]
        message: Option<String>,
        /// Create a missing repository bare (no work tree to check out: faster for large
        /// fleets, and what a Git server holds).
        #[arg(long)]
        bare: bool,
        /// Render every cluster, even those whose inputs did not change since the last render
        /// (nothing is taken from the cache).
        #[arg(long)]
        full: bool,
        /// Neither read nor write the cache in the repository's Git directory.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        sources: SourceArgs,
        #[command(flatten)]
        remote: remote::RemoteArgs,
    },
    /// The fleet as its clusters see it: per cluster, the commit its GitOps agent applied,
    /// how many commits behind HEAD, Ready/Progressing/Failed/Unreachable with the agent's
    /// message, last contact and drift; per application, on how many clusters it runs at
    /// HEAD. Reads the management cluster of KUBECONFIG for each cluster's kubeconfig Secret.
    Status {
        /// The fleet repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Seconds a cluster has to answer before it is Unreachable.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Do not compare delivered objects with the clusters' (one read per object).
        #[arg(long)]
        no_drift: bool,
    },
    /// Generate benchmark fleets and measure atoll on them.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print seed 003 LowLevelOrchestration objects (and any other input) as atoll kinds.
    Convert {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the CustomResourceDefinitions of every atoll kind.
    Crds,
    /// Run atoll as a controller in the management cluster, or print its install manifests.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Run the control plane: REST API over the inventory store, each change rendered and
    /// committed to the repository.
    Serve(serve::ServeArgs),
    /// API tokens for `atoll serve`.
    #[command(subcommand)]
    Token(serve::TokenCommand),
}

/// Where upstream packages may be read from.
#[derive(clap::Args, Clone)]
struct SourceArgs {
    /// A folder under which local upstream package repositories may be read (repeatable, or
    /// `:`-separated in ATOLL_UPSTREAM_ROOTS). Default: the current folder and the folders of
    /// the declarations given.
    #[arg(
        long = "upstream-root",
        value_name = "DIR",
        env = "ATOLL_UPSTREAM_ROOTS",
        value_delimiter = ':'
    )]
    upstream_roots: Vec<PathBuf>,
}

impl SourceArgs {
    fn roots(&self, paths: &[PathBuf]) -> Vec<PathBuf> {
        if !self.upstream_roots.is_empty() {
            return self.upstream_roots.clone();
        }
        let mut roots = vec![PathBuf::from(".")];
        for p in paths {
            roots.push(if p.is_dir() {
                p.clone()
            } else {
                p.parent().map(PathBuf::from).unwrap_or_else(|| ".".into())
            });
        }
        roots
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Write a seeded, realistic fleet of N clusters (declarations in DIR/fleet, the upstream
    /// package repository in DIR/upstream).
    Gen {
        dir: PathBuf,
        #[arg(short = 'n', long, default_value_t = 1000)]
        clusters: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// `atoll serve` at fleet scale: load a generated fleet through the API, time single
    /// writes (beside the CLI making the same change) and lists/gets under concurrent load.
    Serve {
        #[arg(short = 'n', long, default_value_t = 10000)]
        clusters: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Concurrent clients for the list/get load.
        #[arg(long, default_value_t = 200)]
        clients: usize,
        #[arg(long, default_value = "target/bench")]
        work: PathBuf,
    },
    /// Lists and gets under load against a running `atoll serve`: half the clients walk the
    /// cluster list in pages of 500 (following `continue`), half get single clusters.
    Load {
        /// The server, e.g. http://127.0.0.1:8080.
        url: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 200)]
        clients: usize,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Run the benchmark suite for each fleet size and print the report (Markdown).
    Run {
        /// Fleet sizes, comma-separated.
        #[arg(short = 'n', long, value_delimiter = ',', default_value = "1000,10000")]
        clusters: Vec<usize>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Scratch folder for fleets and repositories.
        #[arg(long, default_value = "target/bench")]
        work: PathBuf,
        /// kubectl for the side-by-side run; `none` skips it.
        #[arg(long, default_value = "kubectl")]
        kubectl: String,
        /// How many clusters' overlays kubectl kustomize builds per fleet size.
        #[arg(long, default_value_t = 1000)]
        kustomize_sample: usize,
        /// Also write the report to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    timing("start");
    match cli.command {
        Command::Validate { paths, sources } => {
            let mut p = Pipeline::detached(options(&paths, &sources, Reuse::Nothing, false));
            let model = match load(&mut p, &paths) {
                Ok(m) => m,
                Err(code) => return Ok(code),
            };
            let plan = match plan(&mut p, &model, false, false, false) {
                Ok(plan) => plan,
                Err(code) => return Ok(code),
            };
            let placements: usize = plan.change.placements.values().map(|a| a.len()).sum();
            println!(
                "valid: {} clusters, {} applications, {} placements, {} teams, {} files would be rendered",
                model.clusters.len(),
                model.applications.len(),
                placements,
                model.teams.len(),
                plan.change.edit.files.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            paths,
            repo,
            output,
            diff,
            no_cache,
            sources,
        } => {
            let reuse = if no_cache { Reuse::Nothing } else { Reuse::All };
            let mut p = Pipeline::open(&repo, options(&paths, &sources, reuse, false))?;
            if p.interrupted() {
                eprintln!(
                    "note: a render was interrupted after its commit: the work tree of {} does not match HEAD yet; the next render repairs it",
                    repo.display()
                );
            }
            let model = match load(&mut p, &paths) {
                Ok(m) => m,
                Err(code) => return Ok(code),
            };
            let planned = match plan(&mut p, &model, diff || output == Format::Json, false, false) {
                Ok(plan) => plan,
                Err(code) => return Ok(code),
            };
            // The process ends soon: freeing a 10,000-cluster model one allocation at a time
            // would cost more than the change itself.
            std::mem::forget(model);
            let change = &planned.change;
            report_drift(&change.drift);
            report_rollouts(&change.rollouts);
            match output {
                Format::Json => println!("{}", serde_json::to_string_pretty(&change.plans)?),
                Format::Text => print_plan(&change.plans, diff),
            }
            std::mem::forget(planned);
            drop(p);
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            paths,
            repo,
            message,
            bare,
            full,
            no_cache,
            sources,
            remote,
        } => {
            let reuse = match (full, no_cache) {
                (_, true) => Reuse::Nothing,
                (true, false) => Reuse::WriteOnly,
                (false, false) => Reuse::All,
            };
            let mut opts = options(&paths, &sources, reuse, true);
            opts.bare = bare;
            let mut p = Pipeline::open(&repo, opts)
                .with_context(|| format!("opening {}", repo.display()))?;
            let model = match load(&mut p, &paths) {
                Ok(m) => m,
                Err(code) => return Ok(code),
            };
            let remote = remote.resolve(Some(&model.fleet))?;
            let publishing = remote.clone();
            p.set_remote(remote);
            // One render at a time per repository: the plan takes the writer lock (and, with a
            // remote, starts from what the remote holds).
            let planned = match plan(&mut p, &model, false, true, full) {
                Ok(plan) => plan,
                Err(code) => return Ok(code),
            };
            report_drift(&planned.change.drift);
            report_rollouts(&planned.change.rollouts);
            let spinner = progress("committing");
            let done = match p.commit_and_publish(planned, &model, message.as_deref()) {
                Ok(d) => d,
                Err(Failure::Invalid(d)) => return Ok(report(&d)),
                Err(Failure::Error(e)) => return Err(e.into()),
            };
            std::mem::forget(model);
            spinner.finish_and_clear();
            timing("commit");
            match done.commit {
                Some(id) => {
                    println!("{}", done.message.lines().next().unwrap_or(""));
                    println!("committed {id} to {}", repo.display());
                }
                None => println!("no changes: {} is up to date", repo.display()),
            }
            if let Some(r) = publishing {
                // A push that failed for another reason than a moving remote: retry a few
                // times, then leave the commit for the next render to push.
                let mut state = p.publish_state();
                let mut wait = std::time::Duration::from_secs(1);
                for _ in 0..3 {
                    if state.error.is_none() {
                        break;
                    }
                    std::thread::sleep(wait);
                    wait *= 2;
                    let _ = p.publish();
                    state = p.publish_state();
                }
                match state.error {
                    None => println!(
                        "pushed to {} ({})",
                        atoll_gitops::display_url(&r.url),
                        r.branch
                    ),
                    Some(e) => {
                        eprintln!("error: committed, not pushed: {e}");
                        eprintln!("the next render pushes it");
                        return Ok(ExitCode::from(3));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert { paths } => {
            let decls = match atoll_model::load_paths(&paths) {
                Ok(d) => d,
                Err(d) => return Ok(report(&d)),
            };
            print!(
                "{}",
                atoll_model::yaml::to_yaml_stream(decls.to_objects().iter())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(b) => bench::run(b),
        Command::Status {
            repo,
            output,
            timeout,
            no_drift,
        } => status::run(&repo, output == Format::Json, timeout, !no_drift),
        Command::Operator(o) => operator::run(o),
        Command::Serve(a) => serve::serve(a),
        Command::Token(t) => serve::token(t),
        Command::Crds => {
            let crds: Vec<serde_json::Value> = atoll_model::crds()
                .iter()
                .map(|c| serde_json::to_value(c).expect("crd"))
                .collect();
            print!("{}", atoll_model::yaml::to_yaml_stream(crds.iter()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn options(paths: &[PathBuf], sources: &SourceArgs, reuse: Reuse, create: bool) -> Options {
    Options {
        create,
        bare: false,
        disk_cache: reuse,
        writer: "atoll render".into(),
        sources: atoll_pipeline::UpstreamSources::files(sources.roots(paths)),
        remote: None,
    }
}

fn progress(what: &str) -> indicatif::ProgressBar {
    let pb = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_message(what.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

fn report(d: &atoll_model::Diagnostics) -> ExitCode {
    for x in &d.0 {
        eprintln!("error: {x}");
    }
    eprintln!("{} error(s); nothing was written", d.0.len());
    ExitCode::from(1)
}

/// Loads and validates the declarations (unchanged files from the cache).
fn load(p: &mut Pipeline, paths: &[PathBuf]) -> Result<Model, ExitCode> {
    let pb = progress("loading declarations");
    let model = p.load_files(paths);
    pb.finish_and_clear();
    timing("load and validate declarations");
    model.map_err(|d| report(&d))
}

/// Plans through the pipeline; errors are reported here and become the exit code.
fn plan(
    p: &mut Pipeline,
    model: &Model,
    with_diff: bool,
    for_commit: bool,
    full: bool,
) -> Result<atoll_pipeline::Plan, ExitCode> {
    let pb = progress(&format!("rendering {} clusters", model.clusters.len()));
    let planned = p.plan_with(model, with_diff, for_commit, full);
    pb.finish_and_clear();
    timing("plan");
    planned.map_err(|f| match f {
        Failure::Invalid(d) => report(&d),
        Failure::Error(atoll_pipeline::Error::Upstream(d)) => {
            report(&atoll_model::Diagnostics(vec![d]))
        }
        Failure::Error(e) => {
            eprintln!("error: {e}");
            eprintln!("nothing was written");
            ExitCode::from(1)
        }
    })
}

/// With `ATOLL_TIMINGS` set, prints how long each phase took (to stderr), to say where the
/// time goes.
fn timing(phase: &str) {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    if std::env::var_os("ATOLL_TIMINGS").is_none() {
        return;
    }
    let mut last = LAST.lock().expect("timer");
    let now = Instant::now();
    if let Some(t) = *last {
        eprintln!("{:>8.1} ms  {phase}", (now - t).as_secs_f64() * 1000.0);
    } else {
        eprintln!("{:>8} ms  {phase}", "-");
    }
    *last = Some(now);
}

/// Says which files changed outside atoll since its last render (and will be put back).
/// Upgrade waves: which wave each cluster is in, and which are held back in Git.
fn report_rollouts(rollouts: &[atoll_pipeline::rollout::Report]) {
    for r in rollouts {
        eprintln!("{}", r.summary());
    }
}

fn report_drift(drift: &[String]) {
    if drift.is_empty() {
        return;
    }
    eprintln!(
        "drift: {} file(s) under clusters/, management/ or state/ changed since atoll's last render; rendering puts them back:",
        drift.len()
    );
    for p in drift.iter().take(20) {
        eprintln!("    {p}");
    }
    if drift.len() > 20 {
        eprintln!("    … and {} more", drift.len() - 20);
    }
}

fn print_plan(plans: &[ClusterPlan], diff: bool) {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = std::io::stdout().lock();
    if plans.is_empty() {
        let _ = writeln!(out, "no changes");
        return;
    }
    let (mut new, mut changed, mut removed) = (0, 0, 0);
    for p in plans {
        let (sym, code) = match p.status {
            PlanStatus::New => {
                new += 1;
                ("+", "32")
            }
            PlanStatus::Removed => {
                removed += 1;
                ("-", "31")
            }
            PlanStatus::Changed => {
                if !p.is_fleet() {
                    changed += 1;
                }
                ("~", "33")
            }
        };
        let _ = writeln!(
            out,
            "{} {} ({} files: +{} ~{} -{})",
            paint(code, sym),
            paint("1", p.cluster.as_str()),
            p.files.len(),
            p.added,
            p.modified,
            p.removed
        );
        for f in &p.files {
            let (s, c) = match f.change {
                ChangeKind::Added => ("+", "32"),
                ChangeKind::Modified => ("~", "33"),
                ChangeKind::Removed => ("-", "31"),
            };
            let _ = writeln!(out, "    {} {}", paint(c, s), f.path);
            if diff && !f.diff.is_empty() {
                for line in f.diff.lines() {
                    let c = if line.starts_with('+') {
                        "32"
                    } else if line.starts_with('-') {
                        "31"
                    } else {
                        "2"
                    };
                    let _ = writeln!(out, "      {}", paint(c, line));
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\nplan: {new} new, {changed} changed, {removed} removed clusters"
    );
}
