//! The web UI in a real browser: `ui-tests/ui.mjs` (Playwright's library driving Debian's
//! Chromium headless; `scripts/browser.sh` installs both when missing) against the real
//! `atoll serve` — on the example fleet (every page, sign-in, roles, plan → apply → commit,
//! rollback, accessibility) and on a generated 10,000-cluster fleet (first paint of the fleet
//! map, drill-down, filters). Screenshots land in `target/ui-screenshots/`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kills the process when dropped (a child of ours is waited for too).
struct Running(u32, Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
        if let Some(c) = &mut self.1 {
            let _ = c.wait();
        }
    }
}

/// Chromium's path, after installing what the browser tests need.
fn browser() -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts/browser.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/browser.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn shots() -> PathBuf {
    root().join("target/ui-screenshots")
}

/// Runs the browser checks of `mode` against `url`; panics with their output if one fails.
fn run_browser(mode: &str, url: &str, tokens: [&str; 3]) -> String {
    let chromium = browser();
    let out = Command::new("node")
        .arg(root().join("ui-tests/ui.mjs"))
        .current_dir(root().join("ui-tests"))
        .env("MODE", mode)
        .env("ATOLL_URL", url)
        .env("ADMIN", tokens[0])
        .env("CONTRIBUTOR", tokens[1])
        .env("READER", tokens[2])
        .env("CHROMIUM", chromium)
        .env("SHOTS", shots())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "browser checks ({mode}) failed:\n{text}"
    );
    text
}

fn value<'a>(lines: &'a str, key: &str) -> &'a str {
    lines
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no `{key}=` in:\n{lines}"))
}

/// The README's way to open the UI (`scripts/serve-example.sh`), then every page in Chromium.
#[test]
fn web_ui_on_the_example_fleet() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new("bash")
        .arg(root().join("scripts/serve-example.sh"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(tmp.path().join("serve"))
        .args(["--atoll", env!("CARGO_BIN_EXE_atoll")])
        .output()
        .unwrap();
    let env = ok(&out);
    let _server = Running(value(&env, "pid").parse().unwrap(), None);
    let base = format!("http://127.0.0.1:{port}");
    // The UI's files are served without a token, with a policy that allows no inline script.
    let page = reqwest::blocking::get(format!("{base}/ui/")).unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().unwrap().contains("/ui/app.js"));
    let out = run_browser(
        "example",
        &base,
        [
            value(&env, "admin"),
            value(&env, "contributor"),
            value(&env, "reader"),
        ],
    );
    assert!(out.contains("0 failed"), "{out}");
}

/// A generated fleet of 10,000 clusters loaded through the API: the fleet map paints within a
/// second of navigation (the browser's clock), aggregated by zone, and drills down.
#[test]
fn web_ui_at_10000_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    succeeded(
        &atoll(&["bench", "gen", "-n", "10000", dir.to_str().unwrap()]),
        "bench gen",
    );
    let db = format!("sqlite:{}", dir.join("atoll.db").display());
    let admin = token(&db, "alice", "platform", "admin");
    let contributor = token(&db, "bob", "team-01", "contributor");
    let reader = token(&db, "carol", "team-01", "reader");
    let port = free_port();
    let log = dir.join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["serve", "--bare", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", &db, "--repo"])
        .arg(dir.join("served.git"))
        .arg("--upstream-base")
        .arg(dir.join("fleet/apps"))
        .arg("--upstream-root")
        .arg(dir)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _server = Running(child.id(), Some(child));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base, &log);
    let t = std::time::Instant::now();
    atoll_bench::serve::load_fleet(&base, &admin, &dir.join("fleet"), &mut |i, of| {
        eprintln!("loaded {i}/{of} bodies ({} s)", t.elapsed().as_secs())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap()));
    run_browser("scale", &base, [&admin, &contributor, &reader]);
    let timing = std::fs::read_to_string(shots().join("scale-timing.json")).unwrap();
    assert!(timing.contains("\"clusters\":10000"), "{timing}");
}

fn wait_ready(base: &str, log: &Path) {
    for _ in 0..300 {
        if reqwest::blocking::get(format!("{base}/readyz")).is_ok_and(|r| r.status() == 200) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "atoll serve did not start:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
