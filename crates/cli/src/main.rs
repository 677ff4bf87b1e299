//! The `atoll` command line: a thin shell over the model, engine and Git crates.

use anyhow::{Context, Result, bail};
use atoll_engine::ipam::Allocations;
use atoll_engine::packages::Fetched;
use atoll_gitops::{ChangeKind, ClusterPlan, Files, FleetRepo};
use atoll_model::{Model, UpstreamPackage};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bench;

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
    match cli.command {
        Command::Validate { paths } => {
            let (model, out) = match render_in_memory(&paths, &Allocations::default()) {
                Ok(v) => v,
                Err(code) => return Ok(code),
            };
            let placements: usize = out.placements.values().map(Vec::len).sum();
            println!(
                "valid: {} clusters, {} applications, {} placements, {} teams, {} files would be rendered",
                model.clusters.len(),
                model.applications.len(),
                placements,
                model.teams.len(),
                out.files.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            paths,
            repo,
            output,
            diff,
        } => {
            let old = match FleetRepo::open_if_exists(&repo)? {
                Some(r) => r.head_files()?,
                None => Files::new(),
            };
            let new = match new_tree(&paths, &old) {
                Ok(n) => n,
                Err(code) => return Ok(code),
            };
            let plans = atoll_gitops::plan(&old, &new, diff || output == Format::Json);
            match output {
                Format::Json => println!("{}", serde_json::to_string_pretty(&plans)?),
                Format::Text => print_plan(&plans, diff),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            paths,
            repo,
            message,
            bare,
        } => {
            let fleet = if bare {
                FleetRepo::open_or_init_bare(&repo)
            } else {
                FleetRepo::open_or_init(&repo)
            }
            .with_context(|| format!("opening {}", repo.display()))?;
            let old = fleet.head_files()?;
            let new = match new_tree(&paths, &old) {
                Ok(n) => n,
                Err(code) => return Ok(code),
            };
            let plans = atoll_gitops::plan(&old, &new, false);
            let spinner = progress("committing");
            let msg = atoll_gitops::commit_message(&plans, message.as_deref());
            let commit = fleet.commit(&new, &msg)?;
            spinner.finish_and_clear();
            match commit {
                Some(id) => {
                    println!("{}", msg.lines().next().unwrap_or(""));
                    println!("committed {id} to {}", repo.display());
                }
                None => println!("no changes: {} is up to date", repo.display()),
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

/// Loads, validates, fetches upstream packages and renders. Errors are reported here and turned
/// into the exit code.
fn render_in_memory(
    paths: &[PathBuf],
    previous: &Allocations,
) -> Result<(Model, atoll_engine::Output), ExitCode> {
    let pb = progress("loading declarations");
    let model = atoll_model::load_model(paths).map_err(|d| {
        pb.finish_and_clear();
        report(&d)
    })?;
    pb.set_message("reading upstream packages");
    let upstreams = fetch_upstreams(&model).map_err(|e| {
        pb.finish_and_clear();
        eprintln!("error: {e:#}");
        eprintln!("nothing was written");
        ExitCode::from(1)
    })?;
    pb.set_message(format!("rendering {} clusters", model.clusters.len()));
    let out = atoll_engine::render(&atoll_engine::Inputs {
        model: &model,
        previous,
        upstreams: &upstreams,
    });
    pb.finish_and_clear();
    match out {
        Ok(o) => Ok((model, o)),
        Err(d) => Err(report(&d)),
    }
}

/// The complete new tree: atoll's rendered files, plus whatever else the repository holds
/// outside the folders atoll owns.
fn new_tree(paths: &[PathBuf], old: &Files) -> Result<Files, ExitCode> {
    let previous = match old.get(atoll_engine::ALLOCATIONS_FILE) {
        Some(bytes) => parse_allocations(bytes).map_err(|e| {
            eprintln!("error: {}: {e}", atoll_engine::ALLOCATIONS_FILE);
            ExitCode::from(1)
        })?,
        None => Allocations::default(),
    };
    let (_, out) = render_in_memory(paths, &previous)?;
    let mut files: Files = old
        .iter()
        .filter(|(p, _)| !atoll_engine::OWNED_DIRS.iter().any(|d| p.starts_with(d)))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    files.extend(out.files.into_iter().map(|(p, s)| (p, s.into_bytes())));
    Ok(files)
}

fn parse_allocations(bytes: &[u8]) -> Result<Allocations> {
    let text = std::str::from_utf8(bytes)?;
    let docs = atoll_model::yaml::parse_documents(text)
        .map_err(|e| anyhow::anyhow!("line {}: {}", e.line, e.message))?;
    match docs.into_iter().next() {
        Some(d) => Ok(serde_json::from_value(d.value)?),
        None => Ok(Allocations::default()),
    }
}

/// Reads every upstream package from its Git repository. Local repositories are found relative
/// to the file that declares them; this build reads no network remotes.
fn fetch_upstreams(m: &Model) -> Result<BTreeMap<UpstreamPackage, Fetched>> {
    let mut declared_in: BTreeMap<UpstreamPackage, String> = BTreeMap::new();
    for pv in m.package_variants.values() {
        declared_in
            .entry(pv.spec.upstream.clone())
            .or_insert_with(|| pv.origin.file.to_string());
    }
    for a in m.applications.values() {
        if let Some(k) = &a.spec.kpt {
            declared_in
                .entry(k.clone())
                .or_insert_with(|| a.origin.file.to_string());
        }
    }
    let mut out = BTreeMap::new();
    for (up, file) in declared_in {
        let repo = up.repo.strip_prefix("file://").unwrap_or(&up.repo);
        if repo.contains("://") || repo.starts_with("git@") {
            bail!(
                "{file}: upstream repository `{}` is remote; this build reads local repositories only (clone it and give its path)",
                up.repo
            );
        }
        let base = Path::new(&file).parent().unwrap_or(Path::new("."));
        let path = if Path::new(repo).is_absolute() {
            PathBuf::from(repo)
        } else {
            base.join(repo)
        };
        let (commit, files) = atoll_gitops::read_package(&path, &up.package, &up.revision)
            .with_context(|| {
                format!(
                    "{file}: reading upstream package {}/{}@{}",
                    up.repo, up.package, up.revision
                )
            })?;
        out.insert(up, Fetched { commit, files });
    }
    Ok(out)
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
        let (sym, code) = match p.status.as_str() {
            "new" => {
                new += 1;
                ("+", "32")
            }
            "removed" => {
                removed += 1;
                ("-", "31")
            }
            _ => {
                if p.cluster != "(fleet)" {
                    changed += 1;
                }
                ("~", "33")
            }
        };
        let _ = writeln!(
            out,
            "{} {} ({} files: +{} ~{} -{})",
            paint(code, sym),
            paint("1", &p.cluster),
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
