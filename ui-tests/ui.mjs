// Browser tests of atoll's web UI, run by crates/cli/tests/ui.rs against a real `atoll serve`:
// Playwright's library drives Debian's Chromium headless. Each check compares what the page
// shows with what the REST API answers, so the UI cannot drift from the API.
//
// Environment: ATOLL_URL (http://127.0.0.1:PORT), ADMIN, CONTRIBUTOR, READER (tokens; the
// contributor and the reader are of team `retail`), CHROMIUM (its path), SHOTS (a folder for
// screenshots), MODE (`example`: the example fleet, every page and write; `scale`: a
// generated 10,000-cluster fleet, first paint of the fleet map and filters).
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.ATOLL_URL;
const SHOTS = process.env.SHOTS || "target/ui-screenshots";
const MODE = process.env.MODE || "example";
mkdirSync(SHOTS, { recursive: true });

const results = [];
async function check(name, f) {
  const t = Date.now();
  try {
    await f();
    results.push({ name, ok: true, ms: Date.now() - t });
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    results.push({ name, ok: false, error: String(e && e.stack || e) });
    console.log(`FAIL ${name}\n${e && e.stack || e}`);
  }
}

async function api(token, path, opts = {}) {
  const r = await fetch(BASE + path, {
    method: opts.method || "GET",
    headers: Object.assign({ Authorization: `Bearer ${token}` }, opts.headers || {}),
    body: opts.body,
  });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch (_) { body = text; }
  return { status: r.status, body, headers: r.headers };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// A page signed in with `token` (none: signed out), recording console errors.
async function open(token, hash, errors) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  if (token) await context.addInitScript((t) => sessionStorage.setItem("atoll.token", t), token);
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") errors.push(`${hash}: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`${hash}: ${e.message}`));
  page.on("dialog", (d) => d.accept());
  await page.goto(`${BASE}/ui/${hash}`);
  return page;
}

async function axe(page, what) {
  await page.evaluate(AXE);
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`), [],
    `axe on ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: false });
}

const errors = [];
const { ADMIN, CONTRIBUTOR, READER } = process.env;

if (MODE === "example") {
  await check("signing in with a token opens the fleet map", async () => {
    const page = await open(null, "#/fleet", errors);
    await page.getByLabel("Token").fill(READER);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#fleet-map").waitFor();
    assert.match(await page.locator("#who").textContent(), /carol · team retail · reader/);
    await shot(page, "login-done");
    await page.context().close();
  });

  await check("a wrong token is refused on the sign-in page", async () => {
    const page = await open(null, "#/login", []);
    await page.getByLabel("Token").fill("atoll_not_a_token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: /token/i }).waitFor();
    await page.context().close();
  });

  await check("fleet map: one square per cluster, as the API lists them, and logical clusters outlined", async () => {
    const page = await open(ADMIN, "#/fleet", errors);
    await page.locator("#fleet-map").waitFor();
    const listed = (await api(ADMIN, "/apis/atoll.dev/v1alpha1/clusters")).body.items.map((c) => c.metadata.name).sort();
    const shown = (await page.locator("#fleet-map rect[data-cluster]").evaluateAll((els) => els.map((e) => e.dataset.cluster))).sort();
    assert.deepEqual(shown, listed);
    assert.ok(await page.locator("#fleet-map g[data-logical]").count() >= 1, "a logical cluster is outlined");
    await axe(page, "fleet map");
    await shot(page, "fleet-map");
    await page.context().close();
  });

  await check("fleet map filter agrees with the API's label selector", async () => {
    for (const sel of ["tier=edge", "region in (eu-west,us-east),tier!=core", "!zone", "gpu=true"]) {
      const page = await open(ADMIN, "#/fleet", errors);
      await page.locator("#fleet-map").waitFor();
      await page.getByLabel("Label selector").fill(sel);
      await page.getByRole("button", { name: "Filter" }).click();
      await page.waitForFunction((s) => new URLSearchParams(location.hash.split("?")[1] || "").get("sel") === s, sel);
      await page.locator("#fleet-map").waitFor();
      const listed = (await api(ADMIN, "/apis/atoll.dev/v1alpha1/clusters?labelSelector=" + encodeURIComponent(sel))).body.items.map((c) => c.metadata.name).sort();
      const shown = (await page.locator("#fleet-map rect[data-cluster]").evaluateAll((els) => els.map((e) => e.dataset.cluster))).sort();
      assert.deepEqual(shown, listed, sel);
      await page.context().close();
    }
  });

  await check("placement matrix: every cell agrees with the API's placements", async () => {
    const page = await open(ADMIN, "#/placements", errors);
    await page.locator("#matrix").waitFor();
    const cells = await page.locator("#matrix td.cell").evaluateAll((els) =>
      els.map((e) => [e.dataset.app, e.dataset.cluster, e.classList.contains("yes")]));
    assert.ok(cells.length > 0);
    const byApp = {};
    for (const [app, cluster, yes] of cells) {
      if (!byApp[app]) byApp[app] = (await api(ADMIN, "/api/v1/placements?application=" + encodeURIComponent(app))).body.clusters;
      assert.equal(yes, byApp[app].includes(cluster), `${app} on ${cluster}`);
    }
    await axe(page, "placement matrix");
    await shot(page, "placement-matrix");
    // A placed cell leads to why: the cluster page names the TargetPolicy.
    await page.locator('#matrix td.yes[data-app="retail/pos"] a').first().click();
    await page.locator("#placed").waitFor();
    assert.match(await page.locator("#placed").textContent(), /TargetPolicy retail\//);
    await page.context().close();
  });

  await check("cluster page: effective spec with provenance, Cluster API objects, placements", async () => {
    const page = await open(ADMIN, "#/clusters/edge-paris", errors);
    await page.locator("#provenance").waitFor();
    const text = await page.locator("#provenance").textContent();
    assert.match(text, /kubernetesVersion/);
    assert.match(text, /profile edge-k3s@1\.0\.0/);
    const body = await page.locator("main").textContent();
    assert.match(body, /Cluster fleet-clusters\/edge-paris/);
    assert.match(body, /MachineDeployment/);
    await axe(page, "cluster page");
    await shot(page, "cluster-page");
    await page.context().close();
  });

  await check("a reader sees no write controls, and a forged write gets 403", async () => {
    const page = await open(READER, "#/applications/retail/pos", errors);
    await page.locator("#app-spec").waitFor();
    assert.equal(await page.getByRole("button", { name: /Roll back/ }).count(), 0);
    assert.equal(await page.getByRole("link", { name: "Change" }).count(), 0);
    await page.goto(`${BASE}/ui/#/compose`);
    await page.getByText("cannot change the fleet").waitFor();
    assert.equal(await page.locator("textarea").count(), 0);
    await axe(page, "application page (reader)");
    const spec = (await api(READER, "/apis/atoll.dev/v1alpha1/namespaces/retail/applications/pos")).body;
    const forged = await api(READER, "/api/v1/apply", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec),
    });
    assert.equal(forged.status, 403);
    const rb = await api(READER, "/apis/atoll.dev/v1alpha1/namespaces/retail/applications/pos/rollback", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ toEvent: 1 }),
    });
    assert.equal(rb.status, 403);
    await page.context().close();
  });

  let before;
  await check("a contributor plans and applies a change and sees the new commit", async () => {
    before = (await api(CONTRIBUTOR, "/apis/atoll.dev/v1alpha1/namespaces/retail/applications/pos")).body;
    const page = await open(CONTRIBUTOR, "#/compose?app=retail/pos", errors);
    const area = page.getByLabel("Declarations");
    await area.waitFor();
    const decl = JSON.parse(await area.inputValue());
    decl.metadata.labels = Object.assign({}, decl.metadata.labels, { "changed-by": "ui-test" });
    decl.spec.components[0].replicas = (decl.spec.components[0].replicas || 1) + 1;
    await area.fill(JSON.stringify(decl, null, 2));
    await page.getByLabel("Message").fill("more replicas, from the browser test");
    await page.getByRole("button", { name: "Plan" }).click();
    await page.locator("#plan-summary").waitFor();
    assert.match(await page.locator("#plan-summary").textContent(), /package/);
    await axe(page, "change composer with a plan");
    await shot(page, "change-plan");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.locator("#commit-id").waitFor({ timeout: 60000 });
    const commit = (await page.locator("#commit-id").textContent()).trim();
    const inv = (await api(CONTRIBUTOR, "/api/v1/inventory")).body;
    assert.equal(inv.commit, commit);
    const steps = await page.locator("#task-steps li").allTextContents();
    assert.ok(steps.includes("commit"), steps.join(","));
    await shot(page, "change-applied");
    const after = (await api(CONTRIBUTOR, "/apis/atoll.dev/v1alpha1/namespaces/retail/applications/pos")).body;
    assert.equal(after.spec.components[0].replicas, decl.spec.components[0].replicas);
    await page.context().close();
  });

  await check("rollback from the application page restores the previous spec", async () => {
    const page = await open(CONTRIBUTOR, "#/applications/retail/pos", errors);
    await page.locator("#app-spec").waitFor();
    const tl = (await api(CONTRIBUTOR, "/api/v1/timelines/applications/retail/pos")).body.events;
    // The event before the contributor's change: the spec `before` held.
    const target = tl.filter((e) => e.after && JSON.stringify(e.after.spec) === JSON.stringify(before.spec)).pop();
    assert.ok(target, "an event holds the previous spec");
    await axe(page, "application page");
    await shot(page, "application-page");
    await page.locator(`button[data-event="${target.id}"]`).click();
    await page.locator("#toast.show").waitFor({ timeout: 60000 });
    await page.waitForFunction(() => document.querySelector("#app-spec"));
    const now = (await api(CONTRIBUTOR, "/apis/atoll.dev/v1alpha1/namespaces/retail/applications/pos")).body;
    assert.deepEqual(now.spec, before.spec);
    await page.context().close();
  });

  await check("a team sees only its applications and events", async () => {
    const page = await open(CONTRIBUTOR, "#/applications", errors);
    await page.locator("table").waitFor();
    const teams = await page.locator("tbody tr td:first-child").allTextContents();
    assert.ok(teams.length > 0);
    assert.ok(teams.every((t) => t === "retail"), teams.join(","));
    await page.goto(`${BASE}/ui/#/team`);
    await page.getByRole("heading", { name: "Team retail" }).waitFor();
    await axe(page, "team page");
    const other = await api(CONTRIBUTOR, "/api/v1/timelines/teams/platform");
    assert.equal(other.status, 403);
    await page.context().close();
  });
}

if (MODE === "scale") {
  await check("fleet map of the whole fleet first paints within 1 s", async () => {
    const page = await open(ADMIN, "#/fleet", errors);
    const t0 = Date.now();
    await page.locator("#fleet-map").waitFor();
    const wall = Date.now() - t0;
    // The browser's own clock: navigation start to the map in the document.
    const painted = await page.evaluate(() => performance.now());
    const total = (await api(ADMIN, "/api/v1/inventory")).body.clusters;
    assert.equal(await page.locator("#cluster-count").textContent(), String(total));
    writeFileSync(`${SHOTS}/scale-timing.json`, JSON.stringify({ clusters: total, mapShownMs: wall, sinceNavigationMs: Math.round(painted) }));
    console.log(`fleet map of ${total} clusters shown ${wall} ms after load (${Math.round(painted)} ms since navigation)`);
    assert.ok(painted <= 1000, `first paint took ${painted} ms`);
    await axe(page, "fleet map at scale");
    await shot(page, "fleet-map-10000");
    await page.context().close();
  });

  await check("at scale, a zone drills down to its clusters and filters agree with the API", async () => {
    const page = await open(ADMIN, "#/fleet", errors);
    await page.locator("#fleet-map").waitFor();
    await page.locator("#fleet-map rect[data-zone]").first().click();
    await page.waitForFunction(() => location.hash.includes("zone="));
    await page.locator("#fleet-map rect[data-cluster]").first().waitFor();
    const sel = "tier=edge";
    await page.goto(`${BASE}/ui/#/fleet?sel=${encodeURIComponent(sel)}`);
    await page.locator("#fleet-map").waitFor();
    const listed = (await api(ADMIN, "/apis/atoll.dev/v1alpha1/clusters?labelSelector=" + encodeURIComponent(sel))).body.items.length;
    assert.equal(await page.locator("#cluster-count").textContent(), String(listed));
    await page.goto(`${BASE}/ui/#/placements`);
    await page.locator("#matrix").waitFor();
    await axe(page, "placement matrix at scale");
    await shot(page, "placement-matrix-10000");
    await page.context().close();
  });
}

await check("no console errors on any page", async () => {
  assert.deepEqual(errors, []);
});

await browser.close();
writeFileSync(`${SHOTS}/results-${MODE}.json`, JSON.stringify(results, null, 2));
const failed = results.filter((r) => !r.ok);
console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
