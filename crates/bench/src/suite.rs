//! The benchmark suite for one fleet size: generate, full render + commit into an empty
//! repository, re-render with no change, change one cluster's labels, add a site and a new
//! application version, and `kubectl kustomize` over the rendered per-cluster overlays. Every
//! atoll step is the real `atoll` binary run as a child process.

use crate::generator::{self, Params};
use crate::measure::{Cost, run};
use atoll_gitops::FleetRepo;
use atoll_model::yaml::{parse_documents, to_yaml_stream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How to run the suite.
pub struct Settings {
    /// The `atoll` binary to measure.
    pub atoll: PathBuf,
    /// The `kubectl` binary to compare with; `None` skips the comparison.
    pub kubectl: Option<PathBuf>,
    /// How many clusters' overlays kustomize builds (all of them if larger than N).
    pub kustomize_sample: usize,
    /// Parallel kustomize processes (one per core is what a CI runner or an agent gets).
    pub kustomize_jobs: usize,
    /// The generator's seed.
    pub seed: u64,
    /// Scratch directory; each N gets a folder in it.
    pub work: PathBuf,
}

/// Every figure of one fleet size.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Clusters in the fleet.
    pub clusters: usize,
    /// Files in the rendered repository.
    pub files: usize,
    /// Applications placed per cluster, on average.
    pub apps_per_cluster: f64,
    /// Generating the fleet.
    pub generate: Duration,
    /// `atoll render` into an empty repository.
    pub full_render: Cost,
    /// `atoll render` again, nothing changed.
    pub no_change: Cost,
    /// Whether that made a commit (it must not).
    pub no_change_committed: bool,
    /// `atoll plan` after one cluster's labels changed.
    pub one_cluster_plan: Cost,
    /// The same plan with `--no-cache`: what a first run, or a fresh clone, pays.
    pub one_cluster_plan_cold: Cost,
    /// `atoll render` of that change.
    pub one_cluster_render: Cost,
    /// `atoll plan` of a new site (a cluster) with an application version bump.
    pub add_site_plan: Cost,
    /// `atoll render` of it.
    pub add_site_render: Cost,
    /// Clusters kustomize built, and what that cost.
    pub kustomize: Option<(usize, Cost)>,
}

impl Report {
    /// Per-cluster throughput of atoll's full render over kustomize's build (wall clock).
    pub fn kustomize_ratio(&self) -> Option<f64> {
        let (k, cost) = self.kustomize?;
        let kust = cost.wall.as_secs_f64() / k as f64;
        let atoll = self.full_render.wall.as_secs_f64() / self.clusters as f64;
        Some(kust / atoll)
    }
}

/// Steps, for a progress display.
pub const STEPS: &[&str] = &[
    "generate fleet",
    "full render + commit",
    "re-render, no change",
    "one cluster's labels: plan",
    "one cluster's labels: plan, no cache",
    "one cluster's labels: render + commit",
    "add a site + app version: plan",
    "add a site + app version: render + commit",
    "kubectl kustomize",
];

/// Runs the suite for `n` clusters; `step` is told each step's index as it starts.
pub fn run_one(
    n: usize,
    s: &Settings,
    mut step: impl FnMut(usize, &str),
) -> Result<Report, crate::Error> {
    let dir = s.work.join(format!("n{n}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut r = Report {
        clusters: n,
        ..Default::default()
    };

    step(0, STEPS[0]);
    let t = Instant::now();
    let fleet = generator::generate(Params {
        clusters: n,
        seed: s.seed,
    });
    generator::write(&fleet, &dir)?;
    r.generate = t.elapsed();
    let decl = dir.join("fleet");
    let repo = dir.join("fleet.git");

    let atoll = |args: &[&str]| -> Result<crate::measure::Run, crate::Error> {
        let mut c = Command::new(&s.atoll);
        c.args(args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("ATOLL_UPSTREAM_ROOTS", &dir);
        let out = run(&mut c)?;
        if !out.output.status.success() {
            return Err(crate::Error::Failed(format!(
                "atoll {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.output.stderr)
            )));
        }
        Ok(out)
    };
    let d = decl.to_str().expect("utf-8 path");
    let rp = repo.to_str().expect("utf-8 path");

    step(1, STEPS[1]);
    let full = atoll(&["render", d, "--repo", rp, "--bare"])?;
    r.full_render = full.cost;
    let head = FleetRepo::open_or_init(&repo)?.head()?;
    let files = FleetRepo::open_or_init(&repo)?.head_paths()?;
    r.files = files.len();
    let placed = files
        .keys()
        .filter(|p| p.starts_with("clusters/") && p.ends_with("/kustomization.yaml"))
        .filter(|p| p.split('/').count() == 6 && p.contains("/apps/"))
        .count();
    r.apps_per_cluster = placed as f64 / n as f64;

    step(2, STEPS[2]);
    let again = atoll(&["render", d, "--repo", rp])?;
    r.no_change = again.cost;
    r.no_change_committed = FleetRepo::open_or_init(&repo)?.head()? != head;

    step(3, STEPS[3]);
    edit_cluster(&decl, "eu-west", |labels| {
        labels["format"] = "hyper".into();
        labels["env"] = "staging".into();
    })?;
    r.one_cluster_plan = atoll(&["plan", d, "--repo", rp])?.cost;
    step(4, STEPS[4]);
    r.one_cluster_plan_cold = atoll(&["plan", d, "--repo", rp, "--no-cache"])?.cost;
    step(5, STEPS[5]);
    r.one_cluster_render = atoll(&["render", d, "--repo", rp, "-m", "relabel one site"])?.cost;

    step(6, STEPS[6]);
    add_site(&decl, n)?;
    bump_app(&decl)?;
    r.add_site_plan = atoll(&["plan", d, "--repo", rp])?.cost;
    step(7, STEPS[7]);
    r.add_site_render = atoll(&["render", d, "--repo", rp, "-m", "new site, app-00-0 2.0.0"])?.cost;

    step(8, STEPS[8]);
    if let Some(kubectl) = &s.kubectl {
        r.kustomize = Some(kustomize(
            kubectl,
            &repo,
            &dir.join("overlays"),
            s.kustomize_sample.min(n),
            s.kustomize_jobs,
        )?);
    }
    Ok(r)
}

/// Changes the labels of the first cluster declared in `region`'s file.
pub fn edit_cluster(
    decl: &Path,
    region: &str,
    f: impl FnOnce(&mut serde_json::Value),
) -> Result<(), crate::Error> {
    let p = decl.join("clusters").join(format!("{region}.yaml"));
    let mut docs = read_docs(&p)?;
    let first = docs
        .first_mut()
        .ok_or_else(|| crate::Error::Failed(format!("{}: no clusters", p.display())))?;
    f(&mut first["metadata"]["labels"]);
    std::fs::write(&p, to_yaml_stream(docs.iter()))?;
    Ok(())
}

/// Changes the labels of the cluster called `name`, wherever it is declared.
pub fn edit_cluster_named(
    decl: &Path,
    name: &str,
    f: impl FnOnce(&mut serde_json::Value),
) -> Result<(), crate::Error> {
    for e in std::fs::read_dir(decl.join("clusters"))? {
        let p = e?.path();
        let mut docs = read_docs(&p)?;
        if let Some(d) = docs.iter_mut().find(|d| d["metadata"]["name"] == name) {
            f(&mut d["metadata"]["labels"]);
            std::fs::write(&p, to_yaml_stream(docs.iter()))?;
            return Ok(());
        }
    }
    Err(crate::Error::Failed(format!("no cluster `{name}`")))
}

/// Declares one more edge cluster, `edge-eu-west-<n>`.
pub fn add_site(decl: &Path, n: usize) -> Result<(), crate::Error> {
    let p = decl.join("clusters/eu-west.yaml");
    let mut docs = read_docs(&p)?;
    docs.push(generator::cluster(
        &format!("edge-eu-west-{n:05}"),
        "edge",
        "eu-west",
        1,
        "express",
        true,
    ));
    std::fs::write(&p, to_yaml_stream(docs.iter()))?;
    Ok(())
}

/// Moves the Helm application `app-00-0` to chart version 2.0.0.
pub fn bump_app(decl: &Path) -> Result<(), crate::Error> {
    let p = decl.join("apps/team-00.yaml");
    let mut docs = read_docs(&p)?;
    for d in &mut docs {
        if d["metadata"]["name"] == "app-00-0" {
            d["spec"]["helm"]["version"] = "2.0.0".into();
        }
    }
    std::fs::write(&p, to_yaml_stream(docs.iter()))?;
    Ok(())
}

/// The YAML documents of a file, as JSON values.
pub fn read_docs(p: &Path) -> Result<Vec<serde_json::Value>, crate::Error> {
    let text = std::fs::read_to_string(p)?;
    let docs = parse_documents(&text)
        .map_err(|e| crate::Error::Failed(format!("{}:{}: {}", p.display(), e.line, e.message)))?;
    Ok(docs.into_iter().map(|d| d.value).collect())
}

/// Writes the first `k` clusters' folders from the repository's HEAD to disk and builds each
/// with `kubectl kustomize`, `jobs` at a time. Returns how many it built and the summed cost
/// (wall clock of the whole batch; CPU and peak RSS of the kustomize processes).
fn kustomize(
    kubectl: &Path,
    repo: &Path,
    out: &Path,
    k: usize,
    jobs: usize,
) -> Result<(usize, Cost), crate::Error> {
    let fleet = FleetRepo::open_or_init(repo)?;
    let files = fleet.head_files()?;
    let mut clusters: Vec<String> = Vec::new();
    for path in files.keys() {
        if let Some(c) = path
            .strip_prefix("clusters/")
            .and_then(|r| r.split('/').next())
            && clusters.last().map(String::as_str) != Some(c)
        {
            clusters.push(c.to_string());
        }
    }
    clusters.truncate(k);
    for (path, bytes) in &files {
        let Some(c) = path
            .strip_prefix("clusters/")
            .and_then(|r| r.split('/').next())
        else {
            continue;
        };
        if clusters.binary_search_by(|x| x.as_str().cmp(c)).is_err() {
            continue;
        }
        let p = out.join(path);
        std::fs::create_dir_all(p.parent().expect("parent"))?;
        std::fs::write(p, bytes)?;
    }
    let queue = std::sync::Mutex::new(clusters.clone().into_iter());
    let start = Instant::now();
    let results: Vec<Result<Cost, crate::Error>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                sc.spawn(|| {
                    let mut total = Cost::default();
                    loop {
                        let Some(c) = queue.lock().expect("queue").next() else {
                            return Ok(total);
                        };
                        let dir = out.join("clusters").join(&c);
                        let r = run(Command::new(kubectl).arg("kustomize").arg(&dir))?;
                        if !r.output.status.success() {
                            return Err(crate::Error::Failed(format!(
                                "kubectl kustomize {}: {}",
                                dir.display(),
                                String::from_utf8_lossy(&r.output.stderr)
                            )));
                        }
                        total = total.then(r.cost);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let mut cost = Cost::default();
    for r in results {
        cost = cost.then(r?);
    }
    cost.wall = start.elapsed();
    Ok((clusters.len(), cost))
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.1} s")
    }
}

fn cost(c: &Cost) -> String {
    format!(
        "{} (cpu {}, {} MiB)",
        secs(c.wall),
        secs(c.cpu),
        c.peak_rss / (1024 * 1024)
    )
}

/// The report as a Markdown table: one column per fleet size.
pub fn markdown(machine: &str, reports: &[Report]) -> String {
    let mut out = format!("Machine: {machine}\n\n| | ");
    out.push_str(
        &reports
            .iter()
            .map(|r| format!("N = {}", r.clusters))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|---|");
    out.push_str(&"---|".repeat(reports.len()));
    out.push('\n');
    let mut row = |name: &str, f: &dyn Fn(&Report) -> String| {
        out.push_str(&format!("| {name} | "));
        out.push_str(&reports.iter().map(f).collect::<Vec<_>>().join(" | "));
        out.push_str(" |\n");
    };
    row("files in the repository", &|r| r.files.to_string());
    row("applications per cluster (mean)", &|r| {
        format!("{:.1}", r.apps_per_cluster)
    });
    row("generate fleet", &|r| secs(r.generate));
    row("full render + commit (wall, CPU, peak RSS)", &|r| {
        cost(&r.full_render)
    });
    row("re-render, no change", &|r| {
        format!(
            "{}{}",
            cost(&r.no_change),
            if r.no_change_committed {
                " **COMMITTED**"
            } else {
                ", no commit"
            }
        )
    });
    row("one cluster's labels: plan", &|r| cost(&r.one_cluster_plan));
    row("one cluster's labels: plan, no cache", &|r| {
        cost(&r.one_cluster_plan_cold)
    });
    row("one cluster's labels: render + commit", &|r| {
        cost(&r.one_cluster_render)
    });
    row("add a site + an app version: plan", &|r| {
        cost(&r.add_site_plan)
    });
    row("add a site + an app version: render + commit", &|r| {
        cost(&r.add_site_render)
    });
    row(
        "kubectl kustomize (clusters built, wall, CPU)",
        &|r| match r.kustomize {
            Some((k, c)) => format!("{k}: {}", cost(&c)),
            None => "skipped".into(),
        },
    );
    row(
        "atoll per cluster vs kustomize per cluster",
        &|r| match (r.kustomize, r.kustomize_ratio()) {
            (Some((k, c)), Some(ratio)) => format!(
                "{:.2} ms vs {:.1} ms: **{ratio:.0}×**",
                r.full_render.wall.as_secs_f64() * 1000.0 / r.clusters as f64,
                c.wall.as_secs_f64() * 1000.0 / k as f64
            ),
            _ => "—".into(),
        },
    );
    out
}
