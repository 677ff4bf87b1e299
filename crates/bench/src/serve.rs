//! `atoll serve` at fleet scale, side by side with the CLI in the same run: the generated
//! fleet is loaded into a real `atoll serve` (SQLite, a bare repository) through the REST API
//! in chunks under the body limit, then single writes are timed from the client — one
//! cluster's labels, a change that touches no package, an application version bump placed on
//! thousands of clusters (beside `atoll render` making the same change) — and lists and gets
//! are put under load by concurrent clients following `continue` tokens.

use crate::Error;
use crate::measure::Cost;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct ServeReport {
    /// Loading the generated fleet through the API.
    pub load: Duration,
    /// In how many requests (each under the body limit).
    pub load_chunks: usize,
    /// PUT of one cluster's labels, each of [`WRITES`] times.
    pub one_cluster: Vec<Duration>,
    /// PUT that changes no package (a team's description), each of [`WRITES`] times.
    pub no_package: Vec<Duration>,
    /// PUT of an application's chart version, and on how many clusters it is placed.
    pub app_bump: Duration,
    /// See `app_bump`.
    pub app_bump_clusters: usize,
    /// `atoll render` of the same change, in the same run.
    pub cli_app_bump: Cost,
    /// Latencies under load (p50, p99, requests served).
    pub list_page: Latency,
    /// GET of one object, under the same load.
    pub get_one: Latency,
    /// Concurrent clients.
    pub clients: usize,
    /// The server's peak resident set size, bytes.
    pub peak_rss: u64,
}

/// Latency percentiles of one kind of request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Requests measured.
    pub count: usize,
}

/// How many times each single write is timed (a different value each time).
pub const WRITES: usize = 5;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn fail(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Failed(format!("{what}: {e}"))
}

/// The declaration documents of a generated fleet, in the order a store accepts them
/// (what others refer to first).
fn documents(decl: &Path) -> Result<Vec<Value>, Error> {
    let mut files = Vec::new();
    let mut stack = vec![decl.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        docs.extend(crate::suite::read_docs(&f)?);
    }
    let order = |k: &str| match k {
        "Fleet" => 0,
        "IPPool" => 1,
        "InfrastructureProfile" => 2,
        "ClusterCatalog" => 3,
        "Team" => 4,
        "Cluster" => 5,
        "LogicalCluster" => 6,
        "Application" => 7,
        _ => 8,
    };
    docs.sort_by_key(|d| order(d["kind"].as_str().unwrap_or("")));
    Ok(docs)
}

/// Loads the declarations under `decl` into the `atoll serve` at `url` through its API
/// (`POST /api/v1/apply`, bodies of at most ~900 KB, each task awaited), kinds that others
/// refer to first. `progress(sent, of)` is called after each body. Returns how many bodies.
pub fn load_fleet(
    url: &str,
    token: &str,
    decl: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<usize, Error> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| fail("http client", e))?;
    let mut chunks = vec![String::new()];
    for d in &documents(decl)? {
        let text = atoll_model::yaml::to_yaml(d);
        let last = chunks.last_mut().expect("a chunk");
        if !last.is_empty() && last.len() + text.len() > 900_000 {
            chunks.push(String::new());
        }
        let last = chunks.last_mut().expect("a chunk");
        last.push_str("---\n");
        last.push_str(&text);
    }
    let of = chunks.len();
    for (i, body) in chunks.into_iter().enumerate() {
        let resp = http
            .post(format!("{url}/api/v1/apply?message=load"))
            .bearer_auth(token)
            .header("content-type", "application/yaml")
            .body(body)
            .send()
            .map_err(|e| fail("apply", e))?;
        let v: Value = resp.json().map_err(|e| fail("apply", e))?;
        let path = v["status"].as_str().unwrap_or_default().to_string();
        loop {
            let t: Value = http
                .get(format!("{url}{path}"))
                .bearer_auth(token)
                .send()
                .and_then(|r| r.json())
                .map_err(|e| fail("task", e))?;
            if t["state"] != "running" {
                if t["state"] != "succeeded" {
                    return Err(fail("apply", t));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        progress(i + 1, of);
    }
    Ok(of)
}

/// Runs the serve benchmark on the fleet in `dir/fleet` (its upstreams in `dir/upstream`).
pub fn run(atoll: &Path, dir: &Path, clients: usize) -> Result<ServeReport, Error> {
    let mut r = ServeReport {
        clients,
        ..Default::default()
    };
    let decl = dir.join("fleet");
    let db = format!("sqlite:{}", dir.join("serve.db").display());
    let out = Command::new(atoll)
        .args(["token", "create", "--database", &db, "--name", "bench"])
        .args(["--team", "platform", "--role", "admin"])
        .output()?;
    if !out.status.success() {
        return Err(fail("token", String::from_utf8_lossy(&out.stderr)));
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let child = Command::new(atoll)
        .args(["serve", "--bare", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", &db, "--repo"])
        .arg(dir.join("served.git"))
        .arg("--upstream-base")
        .arg(decl.join("apps"))
        .arg("--upstream-root")
        .arg(dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| fail("http client", e))?;
    let start = Instant::now();
    loop {
        if http
            .get(format!("{}/readyz", server.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(fail("atoll serve", "did not start"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let call = |m: reqwest::Method,
                path: &str,
                body: Option<(&str, String)>|
     -> Result<(Value, Duration), Error> {
        let mut req = http
            .request(m, format!("{}{path}", server.url))
            .bearer_auth(&token);
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let t = Instant::now();
        let resp = req.send().map_err(|e| fail(path, e))?;
        let status = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        let took = t.elapsed();
        if !status.is_success() {
            return Err(fail(path, format!("{status}: {v}")));
        }
        Ok((v, took))
    };
    // Load the fleet, a body of at most ~900 KB at a time.
    let t = Instant::now();
    r.load_chunks = load_fleet(&server.url, &token, &decl, &mut |_, _| {})?;
    r.load = t.elapsed();

    // One cluster's labels.
    let (list, _) = call(
        reqwest::Method::GET,
        "/apis/atoll.dev/v1alpha1/clusters?limit=1",
        None,
    )?;
    let name = list["items"][0]["metadata"]["name"]
        .as_str()
        .ok_or_else(|| fail("clusters", "none"))?
        .to_string();
    let path = format!("/apis/atoll.dev/v1alpha1/clusters/{name}");
    // The last value is the one the CLI's copy below is given.
    for i in (0..WRITES).rev() {
        let (mut c, _) = call(reqwest::Method::GET, &path, None)?;
        c["metadata"]["labels"]["bench"] = match i {
            0 => json!("relabelled"),
            i => json!(format!("relabelled-{i}")),
        };
        let (_, took) = call(
            reqwest::Method::PUT,
            &path,
            Some(("application/json", c.to_string())),
        )?;
        r.one_cluster.push(took);
    }

    // No package changes: a team's description.
    let tpath = "/apis/atoll.dev/v1alpha1/teams/team-00";
    for i in 0..WRITES {
        let (mut team, _) = call(reqwest::Method::GET, tpath, None)?;
        team["spec"]["description"] = json!(format!("benchmarked {i}"));
        let (_, took) = call(
            reqwest::Method::PUT,
            tpath,
            Some(("application/json", team.to_string())),
        )?;
        r.no_package.push(took);
    }

    // The same application bump through the CLI (same fleet, its own repository) and serve.
    let cmp = dir.join("cmp");
    copy_dir(&decl, &cmp.join("fleet"))?;
    if !cmp.join("upstream").exists() {
        std::os::unix::fs::symlink(dir.join("upstream"), cmp.join("upstream"))?;
    }
    let render = |msg: &str| -> Result<Cost, Error> {
        let run = crate::measure::run(
            Command::new(atoll)
                .args(["render", "--bare", "-m", msg])
                .arg(cmp.join("fleet"))
                .arg("--repo")
                .arg(cmp.join("repo.git"))
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .env("ATOLL_UPSTREAM_ROOTS", dir),
        )?;
        if !run.output.status.success() {
            return Err(fail("render", String::from_utf8_lossy(&run.output.stderr)));
        }
        Ok(run.cost)
    };
    // The CLI's repository starts where serve's is: the relabel included.
    crate::suite::edit_cluster_named(&cmp.join("fleet"), &name, |l| {
        l["bench"] = json!("relabelled");
    })?;
    render("baseline")?;
    crate::suite::bump_app(&cmp.join("fleet"))?;
    r.cli_app_bump = render("app-00-0 2.0.0")?;

    let apath = "/apis/atoll.dev/v1alpha1/namespaces/team-00/applications/app-00-0";
    let (mut app, _) = call(reqwest::Method::GET, apath, None)?;
    app["spec"]["helm"]["version"] = json!("2.0.0");
    let t = Instant::now();
    let resp = http
        .put(format!("{}{apath}", server.url))
        .bearer_auth(&token)
        .json(&app)
        .send()
        .map_err(|e| fail(apath, e))?;
    r.app_bump = t.elapsed();
    let status = resp.status();
    let v: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(fail(apath, format!("{status}: {v}")));
    }
    r.app_bump_clusters = v["metadata"]["name"]
        .as_str()
        .map(|_| 0)
        .unwrap_or_default();
    let (placed, _) = call(
        reqwest::Method::GET,
        "/api/v1/placements?application=team-00/app-00-0",
        None,
    )?;
    r.app_bump_clusters = placed["clusters"].as_array().map_or(0, Vec::len);

    // Lists and gets under load.
    let (list_page, get_one) = load(&server.url, &token, clients, Duration::from_secs(10))?;
    r.list_page = list_page;
    r.get_one = get_one;
    r.peak_rss = peak_rss(server.child.id());
    Ok(r)
}

/// The VmHWM of a running process.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest: PathBuf = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// `clients` concurrent clients for `length`: half walk the cluster list in pages of 500
/// (following `continue`), half get single clusters. Returns the latencies of each.
pub fn load(
    url: &str,
    token: &str,
    clients: usize,
    length: Duration,
) -> Result<(Latency, Latency), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .map_err(|e| fail("client", e))?;
        let names: Vec<String> = http
            .get(format!("{url}/apis/atoll.dev/v1alpha1/clusters?limit=200"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| fail("list", e))?
            .json::<Value>()
            .await
            .map_err(|e| fail("list", e))?["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let names = std::sync::Arc::new(names);
        let deadline = Instant::now() + length;
        let mut tasks = Vec::new();
        for i in 0..clients {
            let http = http.clone();
            let url = url.to_string();
            let token = token.to_string();
            let names = names.clone();
            tasks.push(tokio::spawn(async move {
                let mut lats: Vec<(bool, Duration)> = Vec::new();
                let mut cont = String::new();
                let mut k = i;
                while Instant::now() < deadline {
                    let lister = i % 2 == 0;
                    let path = if lister {
                        let c = if cont.is_empty() {
                            String::new()
                        } else {
                            format!("&continue={cont}")
                        };
                        format!("{url}/apis/atoll.dev/v1alpha1/clusters?limit=500{c}")
                    } else {
                        k = (k + 7) % names.len().max(1);
                        format!(
                            "{url}/apis/atoll.dev/v1alpha1/clusters/{}",
                            names.get(k).cloned().unwrap_or_default()
                        )
                    };
                    let t = Instant::now();
                    let resp = http.get(&path).bearer_auth(&token).send().await;
                    let Ok(resp) = resp else { continue };
                    let ok = resp.status().is_success();
                    let body = resp.bytes().await.unwrap_or_default();
                    let took = t.elapsed();
                    if !ok {
                        return Err(fail(&path, String::from_utf8_lossy(&body)));
                    }
                    if lister {
                        // The token is in the list's metadata, before the items: found without
                        // parsing the page (the client shares the server's two cores).
                        cont = continue_token(&body);
                    }
                    lats.push((lister, took));
                }
                Ok(lats)
            }));
        }
        let (mut lists, mut gets) = (Vec::new(), Vec::new());
        for t in tasks {
            for (lister, d) in t.await.map_err(|e| fail("client", e))?? {
                if lister { lists.push(d) } else { gets.push(d) }
            }
        }
        Ok((latency(lists), latency(gets)))
    })
}

/// The `continue` token at the head of a list page, or "".
fn continue_token(body: &[u8]) -> String {
    let head = &body[..body.len().min(1024)];
    let text = String::from_utf8_lossy(head);
    text.split_once("\"continue\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(t, _)| t.to_string())
        .unwrap_or_default()
}

fn latency(mut v: Vec<Duration>) -> Latency {
    v.sort();
    let at = |q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        count: v.len(),
    }
}

/// The report as a Markdown table.
pub fn markdown(machine: &str, clusters: usize, r: &ServeReport) -> String {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    // Median and worst of the samples.
    let spread = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        match (v.get(v.len() / 2), v.last()) {
            (Some(m), Some(w)) => format!("median {}, worst {} of {}", ms(*m), ms(*w), v.len()),
            _ => "-".into(),
        }
    };
    let ratio = r.app_bump.as_secs_f64() / r.cli_app_bump.wall.as_secs_f64().max(1e-9);
    format!(
        "`atoll serve` at {clusters} clusters ({machine}; SQLite, bare repository)\n\n\
| step | atoll serve | target |\n|---|---|---|\n\
| load the fleet through the API ({} chunks) | {:.1} s | |\n\
| PUT one cluster's labels | {} | ≤ 300 ms |\n\
| PUT that changes no package (a team's description) | {} | ≤ 150 ms |\n\
| PUT an application's chart version ({} clusters) | {:.2} s; `atoll render` of the same change: {:.2} s (×{ratio:.2}) | ≤ 1.2 × the CLI |\n\
| list clusters, pages of 500, {} clients | p50 {}, p99 {} ({} requests) | p99 ≤ 20 ms |\n\
| get one cluster, {} clients | p50 {}, p99 {} ({} requests) | p99 ≤ 20 ms |\n\
| server peak RSS | {:.0} MiB | |\n",
        r.load_chunks,
        r.load.as_secs_f64(),
        spread(&r.one_cluster),
        spread(&r.no_package),
        r.app_bump_clusters,
        r.app_bump.as_secs_f64(),
        r.cli_app_bump.wall.as_secs_f64(),
        r.clients / 2,
        ms(r.list_page.p50),
        ms(r.list_page.p99),
        r.list_page.count,
        r.clients - r.clients / 2,
        ms(r.get_one.p50),
        ms(r.get_one.p99),
        r.get_one.count,
        r.peak_rss as f64 / 1048576.0,
    )
}
