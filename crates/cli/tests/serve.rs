//! `atoll serve` over real HTTP, the real binary, a real Git repository — the same scenario
//! against SQLite and against a real PostgreSQL server (started by scripts/postgres.sh, which
//! .ci/run also runs; the test starts it when needed, so it is never skipped).

mod common;
use common::*;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &str, repo: &Path, dir: &Path) -> Server {
    ensure_upstream();
    let port = free_port();
    let log = dir.join(format!("serve-{port}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            db,
            "--repo",
        ])
        .arg(repo)
        .args([
            "--upstream-base",
            "examples/edge-fleet",
            "--upstream-root",
            "target/upstream-packages",
        ])
        .current_dir(root())
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if reqwest::blocking::get(format!("{url}/readyz")).is_ok_and(|r| r.status() == 200) {
            return Server { child, url, log };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "atoll serve did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

struct Api {
    http: Client,
    url: String,
    token: String,
}

impl Api {
    fn new(s: &Server, token: &str) -> Api {
        Api {
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            url: s.url.clone(),
            token: token.into(),
        }
    }
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
    }
    fn get(&self, path: &str) -> Response {
        self.req(reqwest::Method::GET, path).send().unwrap()
    }
    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }
    fn put(&self, path: &str, body: &Value) -> Response {
        self.req(reqwest::Method::PUT, path)
            .json(body)
            .send()
            .unwrap()
    }
    fn post(&self, path: &str, body: &Value) -> Response {
        self.req(reqwest::Method::POST, path)
            .json(body)
            .send()
            .unwrap()
    }
    fn raw(
        &self,
        m: reqwest::Method,
        path: &str,
        ctype: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> Response {
        self.req(m, path)
            .header("content-type", ctype)
            .body(body)
            .send()
            .unwrap()
    }
    fn delete(&self, path: &str) -> Response {
        self.req(reqwest::Method::DELETE, path).send().unwrap()
    }
    /// Waits for a task to finish and returns it.
    fn task(&self, r: Response) -> Value {
        assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
        let t: Value = r.json().unwrap();
        let path = t["status"].as_str().unwrap().to_string();
        let start = Instant::now();
        loop {
            let t = self.json(&path);
            if t["state"] != "running" {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "task still running: {t}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Status and problem document of a failed request.
fn problem(r: Response) -> (u16, Value) {
    let s = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "status {s}");
    (s, r.json().unwrap())
}

fn example_stream() -> String {
    let dir = root().join("examples/edge-fleet");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

const APPS: &str = "/apis/atoll.dev/v1alpha1/namespaces/retail/applications";

fn scenario(db: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    let admin_t = token(db, "alice", "platform", "admin");
    let retail_c = token(db, "rita", "retail", "contributor");
    let retail_r = token(db, "rob", "retail", "reader");
    let analytics_c = token(db, "ana", "analytics", "contributor");
    let server = start(db, &repo, tmp.path());
    let admin = Api::new(&server, &admin_t);
    let rita = Api::new(&server, &retail_c);
    let rob = Api::new(&server, &retail_r);
    let ana = Api::new(&server, &analytics_c);

    // Unauthenticated and unknown tokens.
    assert_eq!(
        reqwest::blocking::get(format!("{}/api/v1/inventory", server.url))
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        Api::new(&server, "atoll_nope")
            .get("/api/v1/inventory")
            .status(),
        401
    );

    // The example fleet as one change (a YAML stream), applied as a task.
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply?message=initial%20fleet",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded", "{t}");
    let steps: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["write", "validate", "render", "record", "commit"]);
    let commit = t["result"]["commit"].as_str().unwrap().to_string();
    assert_eq!(head(&repo), commit);
    assert!(
        git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"])
            .contains("clusters/edge-paris/apps/retail/pos/kustomization.yaml")
    );

    // Lists with label selectors, as kubectl writes them.
    let all = admin.json("/apis/atoll.dev/v1alpha1/clusters")["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 13);
    let edge = admin.json(
        "/apis/atoll.dev/v1alpha1/clusters?labelSelector=tier%3Dedge,region%20in%20(eu-west)",
    );
    let want: Vec<&Value> = all
        .iter()
        .filter(|c| {
            c["metadata"]["labels"]["tier"] == "edge"
                && c["metadata"]["labels"]["region"] == "eu-west"
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(edge["items"].as_array().unwrap().len(), want.len());
    let (s, p) =
        problem(admin.get("/apis/atoll.dev/v1alpha1/clusters?labelSelector=tier%20in%20edge"));
    assert_eq!(s, 400);
    assert_eq!(p["errors"][0]["field"], "labelSelector");

    // Teams see only their own applications.
    let mine = rob.json("/apis/atoll.dev/v1alpha1/applications")["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|a| a["metadata"]["namespace"] == "retail"));
    assert_eq!(
        problem(rob.get("/apis/atoll.dev/v1alpha1/namespaces/analytics/applications")).0,
        403
    );
    assert_eq!(
        problem(rob.get("/apis/atoll.dev/v1alpha1/namespaces/analytics/applications/reporting")).0,
        403
    );
    assert_eq!(
        admin.json("/apis/atoll.dev/v1alpha1/applications")["items"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    // A contributor updates their app: one commit, one event naming them and why.
    let pos = rita.json(&format!("{APPS}/pos"));
    let rv = pos["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut scaled = pos.clone();
    scaled["spec"]["components"][0]["replicas"] = json!(5);
    let r = rita.put(&format!("{APPS}/pos?message=more%20tills"), &scaled);
    assert_eq!(r.status(), 200);
    let new_commit = r.headers()["x-atoll-commit"].to_str().unwrap().to_string();
    assert_eq!(head(&repo), new_commit);
    let updated: Value = r.json().unwrap();
    assert_ne!(updated["metadata"]["resourceVersion"], rv);
    assert_eq!(updated["metadata"]["generation"], 2);
    // The same write with the stale version: 409, nothing changes.
    let (s, p) = problem(rita.put(&format!("{APPS}/pos"), &scaled));
    assert_eq!(s, 409, "{p}");
    assert_eq!(head(&repo), new_commit);
    // Readers and other teams may not write; nobody but admins writes fleet-level kinds.
    assert_eq!(problem(rob.put(&format!("{APPS}/pos"), &updated)).0, 403);
    assert_eq!(problem(ana.put(&format!("{APPS}/pos"), &updated)).0, 403);
    let cluster = admin.json("/apis/atoll.dev/v1alpha1/clusters/edge-paris");
    assert_eq!(
        problem(rita.put("/apis/atoll.dev/v1alpha1/clusters/edge-paris", &cluster)).0,
        403
    );

    // Bad input: a problem naming the field, nothing stored, nothing committed.
    let events_before = admin.json("/api/v1/events")["events"]
        .as_array()
        .unwrap()
        .len();
    let r = rita.raw(
        reqwest::Method::POST,
        APPS,
        "application/json",
        "{\"apiVersion\": \"atoll.dev/v1alpha1\",\n \"kind\": ",
    );
    let (s, p) = problem(r);
    assert_eq!(s, 400);
    assert_eq!(p["errors"][0]["line"], 2);
    let mut typo = json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "kiosk", "namespace": "retail"},
        "spec": {"components": [{"name": "web", "image": "nginx:1.27", "replicaz": 2}]}});
    let (s, p) = problem(rita.post(APPS, &typo));
    assert_eq!(s, 422, "{p}");
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .unwrap()
            .contains("spec.components[0]"),
        "{p}"
    );
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("replicaz"),
        "{p}"
    );
    typo["spec"]["components"][0] =
        json!({"name": "web", "image": "nginx:1.27", "replicas": "two"});
    let (s, p) = problem(rita.post(APPS, &typo));
    assert_eq!(s, 422, "{p}");
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .unwrap()
            .contains("replicas"),
        "{p}"
    );
    typo["spec"]["components"][0] = json!({"name": "web", "image": "nginx:1.27"});
    typo["spec"]["clusters"] = json!(["atlantis"]);
    let (s, p) = problem(rita.post(APPS, &typo));
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["object"], "Application/retail/kiosk", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("atlantis"),
        "{p}"
    );
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20));
    let refused = rita.raw(reqwest::Method::POST, APPS, "application/json", big);
    // The body was not read to its end: the connection ends, and the client is told so (the
    // next request goes down a new one, not one being closed).
    assert_eq!(
        refused.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    assert_eq!(problem(refused).0, 413);
    // Deleting a catalog clusters are built from: refused, naming who refers to it.
    let (s, p) = problem(admin.delete("/apis/atoll.dev/v1alpha1/clustercatalogs/edge"));
    assert_eq!(s, 422, "{p}");
    assert!(p.to_string().contains("Cluster/edge-paris"), "{p}");
    assert_eq!(rita.get(&format!("{APPS}/kiosk")).status(), 404);
    assert_eq!(
        admin.json("/api/v1/events")["events"]
            .as_array()
            .unwrap()
            .len(),
        events_before
    );
    assert_eq!(head(&repo), new_commit);

    // Placements: apps on a cluster, clusters of an app, with revisions.
    let on = rita.json("/api/v1/placements?cluster=edge-paris");
    let apps: Vec<&str> = on["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["application"].as_str().unwrap())
        .collect();
    assert!(
        apps.contains(&"retail/pos") && apps.contains(&"retail/store-web"),
        "{on}"
    );
    let sw = rita.json("/api/v1/placements?application=retail/store-web");
    assert_eq!(sw["revision"], "kpt v1");
    assert!(
        sw["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "edge-paris")
    );
    assert_eq!(
        problem(rita.get("/api/v1/placements?application=analytics/reporting")).0,
        404
    );
    let inv = admin.json("/api/v1/inventory");
    assert_eq!(inv["clusters"], 13);
    assert_eq!(inv["applications"], 6);

    // History, in order; time ranges; the cluster's timeline.
    let tl = rita.json("/api/v1/timelines/applications/retail/pos")["events"]
        .as_array()
        .unwrap()
        .clone();
    let actions: Vec<&str> = tl.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "update"]);
    assert_eq!(tl[1]["actor"], "rita");
    assert_eq!(tl[1]["message"], "more tills");
    assert_eq!(tl[1]["commit"], new_commit.as_str());
    assert!(tl[0]["id"].as_i64() < tl[1]["id"].as_i64());
    let future = rita.json("/api/v1/timelines/applications/retail/pos?since=2999-01-01T00:00:00Z");
    assert!(future["events"].as_array().unwrap().is_empty());
    assert_eq!(problem(rita.get("/api/v1/events?since=yesterday")).0, 400);
    let paris = admin.json("/api/v1/timelines/clusters/edge-paris")["events"]
        .as_array()
        .unwrap()
        .len();
    assert!(paris >= 2, "{paris}");
    assert_eq!(problem(rob.get("/api/v1/timelines/teams/analytics")).0, 403);

    // Roll the app back to its first state: a new change, with its own event and commit.
    let r = rita.post(
        &format!("{APPS}/pos/rollback"),
        &json!({"toEvent": tl[0]["id"]}),
    );
    assert_eq!(r.status(), 200);
    let back: Value = r.json().unwrap();
    assert_eq!(back["spec"], pos["spec"]);
    assert_ne!(head(&repo), new_commit);
    let tl = rita.json("/api/v1/timelines/applications/retail/pos")["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tl.last().unwrap()["action"], "rollback");

    // A whole change rolled back: a site added, then undone.
    let site = json!({"objects": [{"apiVersion": "atoll.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "edge-nice", "labels": {"region": "eu-west", "tier": "edge", "gpu": "false"}},
        "spec": {"catalog": "edge"}}], "message": "new site"});
    let plan: Value = admin.post("/api/v1/plan", &site).json().unwrap();
    let planned: Vec<&str> = plan["plans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "new")
        .map(|p| p["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["edge-nice"]);
    let before_site = head(&repo);
    let t = admin.task(admin.post("/api/v1/apply", &site));
    assert_eq!(t["state"], "succeeded", "{t}");
    assert!(git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]).contains("clusters/edge-nice/"));
    let change = t["result"]["changeId"].as_str().unwrap();
    assert_eq!(
        problem(rita.post(&format!("/api/v1/changes/{change}/rollback"), &json!({}))).0,
        403
    );
    let r = admin.post(&format!("/api/v1/changes/{change}/rollback"), &json!({}));
    assert_eq!(r.status(), 200);
    assert!(!git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]).contains("edge-nice"));
    assert_eq!(
        admin
            .get("/apis/atoll.dev/v1alpha1/clusters/edge-nice")
            .status(),
        404
    );
    assert_eq!(
        git(&repo, &["rev-parse", "HEAD^{tree}"]),
        git(&repo, &["rev-parse", &format!("{before_site}^{{tree}}")])
    );

    // TOSCA import (seed 003 §7.3), then list and delete by owner as the AMF did.
    let bp = std::fs::read_to_string(root().join("examples/tosca/cloud-studio.yaml")).unwrap();
    let r = rita.raw(
        reqwest::Method::POST,
        "/api/v1/tosca?team=retail&input.NODE_ENV=prod",
        "application/yaml",
        bp.clone(),
    );
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    let studio: Value = r.json().unwrap();
    assert_eq!(studio["metadata"]["name"], "cyango-cloud-studio-reimported");
    assert_eq!(studio["spec"]["components"][0]["expose"][0]["public"], true);
    assert_eq!(studio["spec"]["components"][0]["env"][0]["value"], "prod");
    assert_eq!(
        problem(ana.raw(
            reqwest::Method::POST,
            "/api/v1/tosca?team=retail",
            "application/yaml",
            bp.clone()
        ))
        .0,
        403
    );
    let (s, p) = problem(rita.raw(
        reqwest::Method::POST,
        "/api/v1/tosca?team=retail",
        "application/yaml",
        bp.replace(
            "image: repository.charity-project.eu/dotes/cyango-database:beta",
            "",
        ),
    ));
    assert_eq!(s, 422);
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .unwrap()
            .ends_with("cyango-database.properties.image"),
        "{p}"
    );
    let owned = rita.json(&format!("{APPS}?owner=cyango-xr-developer"));
    assert_eq!(owned["items"].as_array().unwrap().len(), 1);
    let r = rita.delete(&format!("{APPS}?owner=cyango-xr-developer"));
    assert_eq!(r.status(), 200);
    let d: Value = r.json().unwrap();
    assert_eq!(d["deleted"], json!(["cyango-cloud-studio-reimported"]));
    assert!(
        rita.json(&format!("{APPS}?owner=cyango-xr-developer"))["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(problem(rita.delete(APPS)).0, 400);

    // Metrics.
    let m = reqwest::blocking::get(format!("{}/metrics", server.url))
        .unwrap()
        .text()
        .unwrap();
    for needle in [
        "atoll_clusters{provider=\"openstack\",phase=\"Unknown\"} 6",
        "atoll_applications 6",
        "atoll_teams 3",
        "atoll_render_duration_seconds_count",
        "atoll_http_request_duration_seconds_bucket{method=\"PUT\",route=\"/apis/atoll.dev/v1alpha1/namespaces/{ns}/{plural}/{name}\",status=\"409\"",
    ] {
        assert!(m.contains(needle), "{needle} not in metrics:\n{m}");
    }

    // Concurrent writers with read-modify-write and retry on 409: no update is lost.
    let writers = 8;
    let each = 5;
    std::thread::scope(|s| {
        for w in 0..writers {
            let api = Api::new(&server, &retail_c);
            s.spawn(move || {
                for _ in 0..each {
                    loop {
                        let mut a = api.json(&format!("{APPS}/store-web"));
                        let n: u32 = a["metadata"]["labels"]["counter"]
                            .as_str()
                            .unwrap_or("0")
                            .parse()
                            .unwrap();
                        a["metadata"]["labels"]["counter"] = json!((n + 1).to_string());
                        let r = api.put(&format!("{APPS}/store-web?message=writer%20{w}"), &a);
                        match r.status().as_u16() {
                            200 => break,
                            409 => continue,
                            s => panic!("writer {w}: {s} {}", r.text().unwrap_or_default()),
                        }
                    }
                }
            });
        }
    });
    let sw = rita.json(&format!("{APPS}/store-web"));
    assert_eq!(
        sw["metadata"]["labels"]["counter"],
        (writers * each).to_string()
    );
    let updates = rita.json("/api/v1/timelines/applications/retail/store-web")["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "update")
        .count();
    assert_eq!(updates, writers * each);

    // Restart: nothing lost, no new commit.
    let head_before = head(&repo);
    let events = admin.json("/api/v1/events")["events"]
        .as_array()
        .unwrap()
        .len();
    drop(server);
    let server = start(db, &repo, tmp.path());
    let admin = Api::new(&server, &admin_t);
    assert_eq!(admin.json(&format!("{APPS}/store-web")), sw);
    assert_eq!(
        admin.json("/api/v1/events")["events"]
            .as_array()
            .unwrap()
            .len(),
        events
    );
    assert_eq!(head(&repo), head_before);
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn serve_api_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    scenario(&format!("sqlite:{}", tmp.path().join("atoll.db").display()));
}

#[test]
fn serve_api_on_postgresql() {
    let out = Command::new("bash")
        .arg(root().join("scripts/postgres.sh"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let base = succeeded(&out, "scripts/postgres.sh (a real PostgreSQL server)");
    let base = base.trim().trim_end_matches("/postgres");
    let db = format!("atoll_test_{}", std::process::id());
    let url = format!("{base}/postgres");
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([&url, "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        succeeded(&out, sql);
    };
    psql(&format!("DROP DATABASE IF EXISTS {db}"));
    psql(&format!("CREATE DATABASE {db}"));
    scenario(&format!("{base}/{db}"));
    psql(&format!("DROP DATABASE {db}"));
}

#[test]
fn the_openapi_document_describes_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("atoll.db").display());
    let admin_t = token(&db, "alice", "platform", "admin");
    let server = start(&db, &tmp.path().join("fleet"), tmp.path());
    let api = Api::new(&server, &admin_t);
    let doc = api.json("/openapi.json");
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for k in [
        "clusters",
        "infrastructureprofiles",
        "clustercatalogs",
        "teams",
        "ippools",
    ] {
        assert!(
            paths.contains_key(&format!("/apis/atoll.dev/v1alpha1/{k}/{{name}}")),
            "{k}"
        );
    }
    assert!(paths.contains_key("/apis/atoll.dev/v1alpha1/namespaces/{ns}/applications/{name}"));
    // Every documented GET without path parameters answers (no route is documented but missing).
    for (path, ops) in paths {
        if ops.get("get").is_some() && !path.contains('{') {
            let r = api.get(path);
            assert_ne!(r.status(), 404, "{path} is documented but not routed");
            assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
        }
    }
    // Schemas of the kinds are the CRDs' own.
    assert!(
        doc["components"]["schemas"]["Cluster"]["properties"]["spec"]["properties"]["catalog"]
            .is_object()
    );
}

/// Every endpoint × every role: who gets in (any answer but 401/403) and who is refused.
#[test]
fn every_endpoint_checks_every_role() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("atoll.db").display());
    let tokens = [
        ("anonymous", String::new()),
        ("retail-reader", token(&db, "rob", "retail", "reader")),
        (
            "retail-contributor",
            token(&db, "rita", "retail", "contributor"),
        ),
        (
            "analytics-contributor",
            token(&db, "ana", "analytics", "contributor"),
        ),
        ("admin", token(&db, "alice", "platform", "admin")),
    ];
    let server = start(&db, &tmp.path().join("fleet"), tmp.path());
    let admin = Api::new(&server, &tokens[4].1);
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded");
    let first_change = t["result"]["changeId"].as_str().unwrap().to_string();
    let paris = admin.json("/apis/atoll.dev/v1alpha1/clusters/edge-paris");
    let pos = admin.json(&format!("{APPS}/pos"));
    // Bodies that fail validation after the role check: allowed callers get 4xx other than
    // 401/403, and nothing changes.
    let bad_cluster = json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "edge-paris"}, "spec": {"catalog": 7}});
    let bad_app = json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "Application", "metadata": {"name": "pos", "namespace": "retail"}, "spec": {"bogus": 1}});
    let bad_set = json!({"objects": [bad_app.clone()]});
    let _ = (&paris, &pos);

    // (method, path, body, roles allowed: A=anonymous R=retail reader C=retail contributor
    // X=analytics contributor D=admin)
    let rows: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", "/healthz".into(), None, "ARCXD"),
        ("GET", "/readyz".into(), None, "ARCXD"),
        ("GET", "/metrics".into(), None, "ARCXD"),
        ("GET", "/openapi.json".into(), None, "ARCXD"),
        ("GET", "/api/v1/inventory".into(), None, "RCXD"),
        (
            "GET",
            "/api/v1/placements?cluster=edge-paris".into(),
            None,
            "RCXD",
        ),
        ("GET", "/api/v1/events".into(), None, "RCXD"),
        ("GET", "/api/v1/tasks/none".into(), None, "RCXD"),
        (
            "GET",
            "/api/v1/timelines/clusters/edge-paris".into(),
            None,
            "RCXD",
        ),
        ("GET", "/api/v1/timelines/teams/retail".into(), None, "RCD"),
        (
            "GET",
            "/api/v1/timelines/applications/retail/pos".into(),
            None,
            "RCD",
        ),
        (
            "GET",
            "/apis/atoll.dev/v1alpha1/clusters".into(),
            None,
            "RCXD",
        ),
        (
            "GET",
            "/apis/atoll.dev/v1alpha1/clusters/edge-paris".into(),
            None,
            "RCXD",
        ),
        (
            "PUT",
            "/apis/atoll.dev/v1alpha1/clusters/edge-paris".into(),
            Some(bad_cluster.clone()),
            "D",
        ),
        (
            "POST",
            "/apis/atoll.dev/v1alpha1/clusters".into(),
            Some(bad_cluster.clone()),
            "D",
        ),
        (
            "DELETE",
            "/apis/atoll.dev/v1alpha1/clusters/none".into(),
            None,
            "D",
        ),
        (
            "GET",
            "/apis/atoll.dev/v1alpha1/applications".into(),
            None,
            "RCXD",
        ),
        ("GET", APPS.into(), None, "RCD"),
        ("GET", format!("{APPS}/pos"), None, "RCD"),
        ("PUT", format!("{APPS}/pos"), Some(bad_app.clone()), "CD"),
        ("POST", APPS.into(), Some(bad_app.clone()), "CD"),
        ("DELETE", format!("{APPS}/none"), None, "CD"),
        ("DELETE", format!("{APPS}?owner=nobody"), None, "CD"),
        (
            "POST",
            format!("{APPS}/pos/rollback"),
            Some(json!({"toEvent": 999999})),
            "CD",
        ),
        (
            "GET",
            "/apis/atoll.dev/v1alpha1/namespaces/analytics/applications".into(),
            None,
            "XD",
        ),
        (
            "GET",
            "/apis/atoll.dev/v1alpha1/namespaces/retail/targetpolicies".into(),
            None,
            "RCD",
        ),
        ("POST", "/api/v1/plan".into(), Some(bad_set.clone()), "CD"),
        ("POST", "/api/v1/apply".into(), Some(bad_set.clone()), "CD"),
        (
            "POST",
            "/api/v1/tosca?team=retail".into(),
            Some(json!("not a blueprint")),
            "CD",
        ),
        // Last: the admin's call really rolls the whole fleet back.
        (
            "POST",
            format!("/api/v1/changes/{first_change}/rollback"),
            None,
            "D",
        ),
    ];
    let letters = ['A', 'R', 'C', 'X', 'D'];
    let http = Client::new();
    let mut failures = Vec::new();
    for (method, path, body, allowed) in &rows {
        for (i, (role, tok)) in tokens.iter().enumerate() {
            let mut rq = http.request(method.parse().unwrap(), format!("{}{path}", server.url));
            if !tok.is_empty() {
                rq = rq.bearer_auth(tok);
            }
            if let Some(b) = body {
                rq = rq.json(b);
            }
            let status = rq.send().unwrap().status().as_u16();
            let may = allowed.contains(letters[i]);
            let refused = status == 401 || status == 403;
            if may == refused || status >= 500 {
                failures.push(format!(
                    "{method} {path} as {role}: {status} (allowed: {may})"
                ));
            }
            if !may && role == &"anonymous" && status != 401 {
                failures.push(format!("{method} {path} anonymous: {status}, expected 401"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// OIDC: JWTs signed by the configured issuer's key, groups mapped to teams and roles.
#[test]
fn oidc_jwts_map_groups_to_teams() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, jwk::Jwk};
    let tmp = tempfile::tempdir().unwrap();
    let keygen = |name: &str| -> EncodingKey {
        let path = tmp.path().join(name);
        let st = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&path)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        EncodingKey::from_rsa_pem(&std::fs::read(&path).unwrap()).unwrap()
    };
    let key = keygen("issuer.pem");
    let impostor = keygen("impostor.pem");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();

    let db = format!("sqlite:{}", tmp.path().join("atoll.db").display());
    let admin_t = token(&db, "alice", "platform", "admin");
    ensure_upstream();
    let port = free_port();
    let log = tmp.path().join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &db,
            "--repo",
        ])
        .arg(tmp.path().join("fleet"))
        .args([
            "--upstream-base",
            "examples/edge-fleet",
            "--upstream-root",
            "target/upstream-packages",
            "--oidc-issuer",
            "https://id.example.net",
            "--oidc-audience",
            "atoll",
            "--oidc-jwks",
        ])
        .arg(&jwks)
        .args([
            "--oidc-group",
            "retail-devs=retail:contributor",
            "--oidc-group",
            "sre=platform:admin",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let start = Instant::now();
    while reqwest::blocking::get(format!("{}/readyz", server.url)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let admin = Api::new(&server, &admin_t);
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = |k: &EncodingKey, claims: Value| -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("k1".into());
        encode(&h, &claims, k).unwrap()
    };
    let claims = |groups: &[&str], iss: &str, exp: u64| {
        json!({"iss": iss, "aud": "atoll", "sub": "u-123", "preferred_username": "rita@example.net",
               "groups": groups, "exp": exp, "iat": now})
    };
    let good = jwt(
        &key,
        claims(
            &["staff", "retail-devs"],
            "https://id.example.net",
            now + 600,
        ),
    );
    let rita = Api::new(&server, &good);
    // Retail contributor through the group: writes retail apps, not others' or fleet kinds.
    let mut pos = rita.json(&format!("{APPS}/pos"));
    pos["spec"]["components"][0]["replicas"] = json!(3);
    let r = rita.put(&format!("{APPS}/pos"), &pos);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let tl = rita.json("/api/v1/timelines/applications/retail/pos")["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tl.last().unwrap()["actor"], "rita@example.net");
    assert_eq!(
        problem(rita.get("/apis/atoll.dev/v1alpha1/namespaces/analytics/applications")).0,
        403
    );
    let paris = rita.json("/apis/atoll.dev/v1alpha1/clusters/edge-paris");
    assert_eq!(
        problem(rita.put("/apis/atoll.dev/v1alpha1/clusters/edge-paris", &paris)).0,
        403
    );
    // An SRE is an admin.
    let sre = Api::new(
        &server,
        &jwt(&key, claims(&["sre"], "https://id.example.net", now + 600)),
    );
    assert_eq!(
        sre.get("/apis/atoll.dev/v1alpha1/namespaces/analytics/applications")
            .status(),
        200
    );
    // Refused: expired, another issuer, another key, unmapped groups, wrong audience.
    for (what, tok) in [
        (
            "expired",
            jwt(
                &key,
                claims(&["retail-devs"], "https://id.example.net", now - 3600),
            ),
        ),
        (
            "issuer",
            jwt(
                &key,
                claims(&["retail-devs"], "https://evil.example.net", now + 600),
            ),
        ),
        (
            "signature",
            jwt(
                &impostor,
                claims(&["retail-devs"], "https://id.example.net", now + 600),
            ),
        ),
        (
            "groups",
            jwt(
                &key,
                claims(&["staff"], "https://id.example.net", now + 600),
            ),
        ),
        ("audience", {
            let mut c = claims(&["retail-devs"], "https://id.example.net", now + 600);
            c["aud"] = json!("someone-else");
            jwt(&key, c)
        }),
    ] {
        let (s, p) = problem(Api::new(&server, &tok).get("/api/v1/inventory"));
        assert_eq!(s, 401, "{what}: {p}");
    }
}

/// schemathesis (from PyPI) generates and fuzzes requests for every operation in
/// /openapi.json, as an admin on a populated fleet: no 5xx.
#[test]
fn schemathesis_finds_no_server_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("atoll.db").display());
    let admin_t = token(&db, "alice", "platform", "admin");
    let server = start(&db, &tmp.path().join("fleet"), tmp.path());
    let admin = Api::new(&server, &admin_t);
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded");
    let out = Command::new("bash")
        .arg(root().join("scripts/schemathesis.sh"))
        .arg(&server.url)
        .arg(&admin_t)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
    assert!(text.contains("passed"), "{text}");
}

/// The hardening report's findings against `atoll serve`, each reproduced and refused.
#[test]
fn hostile_requests_are_refused_early() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("atoll.db");
    let db = format!("sqlite:{}", db_path.display());
    let admin_t = token(&db, "alice", "platform", "admin");
    let reader_t = token(&db, "rob", "retail", "reader");
    let contributor_t = token(&db, "rita", "retail", "contributor");
    // The store holds token hashes and every declaration: readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the SQLite file is {mode:o}");
    let repo = tmp.path().join("fleet");
    let server = start(&db, &repo, tmp.path());
    let admin = Api::new(&server, &admin_t);
    let reader = Api::new(&server, &reader_t);
    let rita = Api::new(&server, &contributor_t);
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded", "{t}");
    let head_before = head(&repo);

    // An alias bomb from a reader: 403 before the body is parsed, in no time.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    let t0 = Instant::now();
    let (s, p) = problem(reader.raw(
        reqwest::Method::POST,
        "/api/v1/plan",
        "application/yaml",
        bomb.clone(),
    ));
    assert_eq!(s, 403, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("may not plan"),
        "{p}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    // From a contributor it is parsed — and the YAML limits refuse it.
    let (s, p) = problem(rita.raw(
        reqwest::Method::POST,
        "/api/v1/plan",
        "application/yaml",
        bomb,
    ));
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("alias bomb"), "{p}");
    assert!(p["errors"][0]["line"].as_u64().unwrap() > 1, "{p}");

    // No token: 401 before the body is read at all. The client announces 2 MiB and sends
    // none of it; the answer comes anyway.
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(b"POST /api/v1/apply HTTP/1.1\r\nHost: x\r\nContent-Type: application/yaml\r\nContent-Length: 2097152\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut status = [0u8; 12];
    c.read_exact(&mut status).unwrap();
    assert_eq!(
        &status,
        b"HTTP/1.1 401",
        "{}",
        String::from_utf8_lossy(&status)
    );

    // The bearer scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/inventory", server.url))
            .header("authorization", format!("{scheme} {admin_t}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }

    // Duplicate JSON keys, a NUL and invalid UTF-8: 400 with the place, nothing stored.
    let dup = r#"{"apiVersion": "atoll.dev/v1alpha1", "kind": "Team",
  "metadata": {"name": "dup", "name": "other"}}"#;
    let (s, p) = problem(admin.raw(
        reqwest::Method::POST,
        "/apis/atoll.dev/v1alpha1/teams",
        "application/json",
        dup,
    ));
    assert_eq!(s, 400, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key `name`"),
        "{p}"
    );
    assert_eq!(p["errors"][0]["line"], 2, "{p}");
    let nul =
        r#"{"apiVersion": "atoll.dev/v1alpha1", "kind": "Team", "metadata": {"name": "t\u0000x"}}"#;
    let (s, p) = problem(admin.raw(
        reqwest::Method::POST,
        "/apis/atoll.dev/v1alpha1/teams",
        "application/json",
        nul,
    ));
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("NUL"), "{p}");
    let mut bad = b"apiVersion: atoll.dev/v1alpha1\nkind: Team\nmetadata: {name: \xff}\n".to_vec();
    bad.extend_from_slice(b"\n");
    let (s, p) = problem(admin.raw(
        reqwest::Method::POST,
        "/apis/atoll.dev/v1alpha1/teams",
        "application/yaml",
        bad,
    ));
    assert_eq!(s, 400, "{p}");
    assert_eq!(
        (
            p["errors"][0]["line"].as_u64(),
            p["errors"][0]["column"].as_u64()
        ),
        (Some(3), Some(18)),
        "{p}"
    );
    assert!(
        p["detail"].as_str().unwrap().contains("byte offset 59"),
        "{p}"
    );

    // `%` and `_` in an event filter are literal characters, not wildcards.
    let count = |q: &str| {
        admin.json(&format!("/api/v1/events{q}"))["events"]
            .as_array()
            .map(Vec::len)
    };
    assert!(count("").unwrap() > 0);
    for wild in ["%25", "_", "edge-pari_", "%25paris"] {
        assert_eq!(
            count(&format!("?cluster={wild}")),
            Some(0),
            "cluster={wild}"
        );
    }
    assert!(count("?cluster=edge-paris").unwrap() > 0);

    // A client that never finishes its headers is cut off (HEADER_READ_TIMEOUT, 10 s).
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(20),
        "closed after {waited:?}"
    );
    // Meanwhile and after, the server answers others.
    assert_eq!(admin.get("/api/v1/inventory").status(), 200);
    assert_eq!(head(&repo), head_before, "nothing was committed");
}

/// Kubernetes-style paging: `limit` and `continue` walk one snapshot of the fleet even while
/// it changes, the list says its `resourceVersion` and how many items remain.
#[test]
fn lists_page_through_one_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("atoll.db").display());
    let admin_t = token(&db, "alice", "platform", "admin");
    let server = start(&db, &tmp.path().join("fleet"), tmp.path());
    let admin = Api::new(&server, &admin_t);
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded", "{t}");
    let all = admin.json("/apis/atoll.dev/v1alpha1/clusters");
    let names: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 13);
    let first = admin.json("/apis/atoll.dev/v1alpha1/clusters?limit=5");
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    assert_eq!(first["metadata"]["remainingItemCount"], 8);
    // The fleet changes between pages: a new label on the last cluster, a new cluster.
    let last = names.last().unwrap();
    let mut c = admin.json(&format!("/apis/atoll.dev/v1alpha1/clusters/{last}"));
    c["metadata"]["labels"]["paged"] = json!("later");
    assert_eq!(
        admin
            .put(&format!("/apis/atoll.dev/v1alpha1/clusters/{last}"), &c)
            .status(),
        200
    );
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        assert_eq!(
            page["metadata"]["resourceVersion"],
            rv.as_str(),
            "one snapshot"
        );
        for i in page["items"].as_array().unwrap() {
            assert!(
                i["metadata"]["labels"]["paged"].is_null(),
                "a later write leaked in"
            );
            seen.push(i["metadata"]["name"].as_str().unwrap().to_string());
        }
        let Some(cont) = page["metadata"]["continue"].as_str().map(str::to_string) else {
            break;
        };
        page = admin.json(&format!(
            "/apis/atoll.dev/v1alpha1/clusters?limit=5&continue={cont}"
        ));
    }
    assert_eq!(seen, names);
    // A fresh list sees the write; with a selector, paging counts what matches.
    let now = admin.json("/apis/atoll.dev/v1alpha1/clusters?labelSelector=paged%3Dlater");
    assert_eq!(now["items"].as_array().unwrap().len(), 1);
    assert_ne!(now["metadata"]["resourceVersion"], rv.as_str());
    let edge = admin.json("/apis/atoll.dev/v1alpha1/clusters?labelSelector=tier%3Dedge&limit=2");
    assert_eq!(edge["items"].as_array().unwrap().len(), 2);
    assert!(edge["metadata"]["remainingItemCount"].as_u64().unwrap() >= 1);
    // A token that is not one, and one for another resource.
    let (s, _) = problem(admin.get("/apis/atoll.dev/v1alpha1/clusters?continue=zz"));
    assert_eq!(s, 400);
    let tok = admin.json("/apis/atoll.dev/v1alpha1/clusters?limit=1")["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = problem(admin.get(&format!("/apis/atoll.dev/v1alpha1/teams?continue={tok}")));
    assert_eq!(s, 400);
    let (s, _) = problem(admin.get("/apis/atoll.dev/v1alpha1/clusters?limit=0"));
    assert_eq!(s, 400);
}

/// The server and the CLI take the same pipeline: after the same sequence of changes — the
/// example fleet, a new site, a relabelled cluster, a new image, an application removed —
/// their repositories hold byte-identical trees.
#[test]
fn serve_and_cli_write_the_same_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("atoll.db").display());
    let admin_t = token(&db, "alice", "platform", "admin");
    let served = tmp.path().join("served");
    let server = start(&db, &served, tmp.path());
    let admin = Api::new(&server, &admin_t);
    // The CLI renders a copy of the same declarations.
    let decl = tmp.path().join("decl/x/fleet");
    std::fs::create_dir_all(&decl).unwrap();
    for e in std::fs::read_dir(root().join("examples/edge-fleet")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, decl.join(p.file_name().unwrap())).unwrap();
    }
    // Relative upstream paths resolve the same way from the copy.
    std::os::unix::fs::symlink(root().join("target"), tmp.path().join("decl/target")).unwrap();
    let cli_repo = tmp.path().join("cli");
    let d = decl.to_str().unwrap();
    let root_s = tmp.path().join("decl/target").canonicalize().unwrap();
    let render = || {
        ok(&atoll(&[
            "render",
            d,
            "--repo",
            cli_repo.to_str().unwrap(),
            "--upstream-root",
            root_s.to_str().unwrap(),
        ]))
    };
    let tree = |repo: &Path| git(repo, &["rev-parse", "HEAD^{tree}"]);
    let edit = |file: &str, from: &str, to: &str| {
        let p = decl.join(file);
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.contains(from), "{file}: {from}");
        std::fs::write(&p, t.replacen(from, to, 1)).unwrap();
    };

    // 1. The example fleet.
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        example_stream(),
    ));
    assert_eq!(t["state"], "succeeded", "{t}");
    render();
    assert_eq!(tree(&served), tree(&cli_repo), "after the example fleet");

    // 2. A new site.
    let site =
        std::fs::read_to_string(root().join("examples/what-if/edge-marseille.yaml")).unwrap();
    let t = admin.task(admin.raw(
        reqwest::Method::POST,
        "/api/v1/apply",
        "application/yaml",
        site.clone(),
    ));
    assert_eq!(t["state"], "succeeded", "{t}");
    std::fs::write(decl.join("what-if.yaml"), &site).unwrap();
    render();
    assert_eq!(tree(&served), tree(&cli_repo), "after a new site");

    // 3. A cluster relabelled.
    let path = "/apis/atoll.dev/v1alpha1/clusters/edge-paris";
    let mut c = admin.json(path);
    c["metadata"]["labels"]["zone"] = json!("eu-west-9");
    assert_eq!(admin.put(path, &c).status(), 200);
    edit(
        "clusters.yaml",
        "zone: \"eu-west-1\"",
        "zone: \"eu-west-9\"",
    );
    render();
    assert_eq!(tree(&served), tree(&cli_repo), "after a relabel");

    // 4. A new image for an application's component.
    let path = "/apis/atoll.dev/v1alpha1/namespaces/retail/applications/pos";
    let mut a = admin.json(path);
    a["spec"]["components"][0]["image"] = json!("registry.example.net/retail/pos-api:1.9.0");
    assert_eq!(admin.put(path, &a).status(), 200);
    edit("apps.yaml", "pos-api:1.8.2", "pos-api:1.9.0");
    render();
    assert_eq!(tree(&served), tree(&cli_repo), "after a new image");

    // 5. An application removed.
    assert_eq!(
        admin
            .delete("/apis/atoll.dev/v1alpha1/namespaces/analytics/applications/reporting")
            .status(),
        200
    );
    let apps = std::fs::read_to_string(decl.join("apps.yaml")).unwrap();
    let kept: Vec<&str> = apps
        .split("\n---\n")
        .filter(|d| !d.contains("name: reporting"))
        .collect();
    assert_eq!(kept.len() + 1, apps.split("\n---\n").count());
    std::fs::write(decl.join("apps.yaml"), kept.join("\n---\n")).unwrap();
    render();
    assert_eq!(tree(&served), tree(&cli_repo), "after a removal");
}
