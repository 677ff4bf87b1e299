//! `atoll bench`: the shell around the benchmark crate (progress display, report file).

use anyhow::{Context, Result};
use atoll_bench::{generator, suite};
use std::process::ExitCode;

pub fn run(cmd: super::BenchCommand) -> Result<ExitCode> {
    match cmd {
        super::BenchCommand::Gen {
            dir,
            clusters,
            seed,
        } => {
            let fleet = generator::generate(generator::Params { clusters, seed });
            generator::write(&fleet, &dir).with_context(|| format!("writing {}", dir.display()))?;
            println!(
                "wrote {} clusters, {} applications, {} policies to {}/fleet (upstream packages in {}/upstream)",
                clusters,
                generator::APPS,
                generator::POLICIES,
                dir.display(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        super::BenchCommand::Serve {
            clusters,
            seed,
            clients,
            work,
        } => {
            let dir = std::path::absolute(&work)?.join(format!("serve-n{clusters}"));
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            let fleet = generator::generate(generator::Params { clusters, seed });
            generator::write(&fleet, &dir)?;
            eprintln!("loading {clusters} clusters into atoll serve…");
            let r = atoll_bench::serve::run(&std::env::current_exe()?, &dir, clients)?;
            println!("{}", atoll_bench::serve::markdown(&machine(), clusters, &r));
            Ok(ExitCode::SUCCESS)
        }
        super::BenchCommand::Load {
            url,
            clients,
            seconds,
        } => {
            let token = std::env::var("ATOLL_TOKEN")
                .context("ATOLL_TOKEN: the bearer token to load the server with")?;
            let (list, get) = atoll_bench::serve::load(
                &url,
                &token,
                clients,
                std::time::Duration::from_secs(seconds),
            )?;
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            println!(
                "list (pages of 500, {} clients): p50 {:.1} ms, p99 {:.1} ms, {} requests",
                clients / 2,
                ms(list.p50),
                ms(list.p99),
                list.count
            );
            println!(
                "get one cluster ({} clients): p50 {:.1} ms, p99 {:.1} ms, {} requests",
                clients - clients / 2,
                ms(get.p50),
                ms(get.p99),
                get.count
            );
            Ok(ExitCode::SUCCESS)
        }
        super::BenchCommand::Run {
            clusters,
            seed,
            work,
            kubectl,
            kustomize_sample,
            report,
        } => {
            let settings = suite::Settings {
                atoll: std::env::current_exe()?,
                kubectl: (kubectl != "none").then(|| kubectl.into()),
                kustomize_sample,
                kustomize_jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
                seed,
                work: std::path::absolute(&work)?,
            };
            let bar = indicatif::ProgressBar::new((clusters.len() * suite::STEPS.len()) as u64);
            if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            let mut reports = Vec::new();
            for (i, &n) in clusters.iter().enumerate() {
                let r = suite::run_one(n, &settings, |s, name| {
                    bar.set_position((i * suite::STEPS.len() + s) as u64);
                    bar.set_message(format!("N={n}: {name}"));
                    if bar.is_hidden() {
                        eprintln!("N={n}: {name}");
                    }
                })
                .with_context(|| format!("benchmark at N = {n}"))?;
                reports.push(r);
            }
            bar.finish_and_clear();
            let text = suite::markdown(&machine(), &reports);
            print!("{text}");
            if let Some(p) = report {
                std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// CPU model, cores and memory, from /proc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}
