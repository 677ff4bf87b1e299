// atoll web UI: a hash-routed page that reads and writes only through the public REST API
// (the OpenAPI document at /openapi.json), with the caller's bearer token. No framework, no
// build step. Untrusted text (names, labels, messages) only ever becomes DOM text nodes.
"use strict";

const TOKEN_KEY = "atoll.token";
const SVGNS = "http://www.w3.org/2000/svg";
// Above this many clusters on screen the map draws zones with counts, not one square each.
const MAP_DETAIL_LIMIT = 600;
// Above this many clusters the placement matrix groups its columns by a label.
const MATRIX_DETAIL_LIMIT = 40;
// Regions wrap to a new row of the map past this width.
const MAP_WIDTH = 1320;

let session = null;

// ------------------------------------------------------------------ DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function main() { return document.getElementById("main"); }

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes.flat().filter(Boolean));
}

function loading(what) {
  show(h("p", { class: "loading", role: "status" }, what || "Loading…"));
}

function toast(msg) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.classList.add("show");
  setTimeout(() => t.classList.remove("show"), 4000);
}

function link(href, text, attrs) { return h("a", Object.assign({ href }, attrs || {}), text); }

function enc(s) { return encodeURIComponent(s); }

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, opts) {
  opts = opts || {};
  const headers = Object.assign({}, opts.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, { method: opts.method || "GET", headers, body: opts.body });
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { detail: text }; }
  if (r.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    session = null;
    location.hash = "#/login?reason=" + enc((body && body.detail) || "sign in");
    throw new ApiError(401, body);
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return { body, headers: r.headers };
}

function problemView(e) {
  const p = e.problem || {};
  const errs = (p.errors || []).map((x) =>
    h("li", {}, [x.object, x.field, x.line ? `line ${x.line}` : null].filter(Boolean).join(" · "), ": ", x.message));
  return h("div", { class: "problem", role: "alert" },
    h("strong", {}, `${e.status || ""} ${p.title || "Error"}`), " ", p.detail || e.message,
    errs.length ? h("ul", {}, errs) : null);
}

// ------------------------------------------------------------------ state colours

const STATES = [
  ["ok", "Ready / provisioned"],
  ["busy", "Progressing / provisioning"],
  ["warn", "Held / not pushed / no agent"],
  ["bad", "Failed / stalled / unreachable"],
  ["unknown", "Not observed"],
];
const COLOURS = { ok: "#1a7f37", busy: "#0a58ca", warn: "#9a6700", bad: "#c62828", unknown: "#6e7781" };

function stateOf(c) {
  const sync = c.sync;
  if (sync === "Ready") return "ok";
  if (sync === "Progressing") return "busy";
  if (sync === "Failed" || sync === "Unreachable") return "bad";
  if (sync === "NoAgent") return "warn";
  switch (c.phase) {
    case "Provisioned": case "Ready": return "ok";
    case "Provisioning": case "Pending": case "Deleting": return "busy";
    case "Held": return "warn";
    case "Failed": case "Stalled": return "bad";
    default: return "unknown";
  }
}

function stateLabel(c) {
  return [c.phase && c.phase !== "Unknown" ? `phase ${c.phase}` : null,
    c.sync ? `agent ${c.sync}` : null].filter(Boolean).join(", ") || "not observed";
}

function legend() {
  return h("div", { class: "legend", "aria-label": "Legend" },
    STATES.map(([k, label]) => h("span", {}, h("span", { class: `swatch s-${k}`, "aria-hidden": "true" }), label)));
}

// ------------------------------------------------------------------ routing

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query || "") };
}

function go(path, params) {
  const q = params && [...params.entries()].length ? "?" + params.toString() : "";
  const next = "#/" + path + q;
  // The same hash fires no hashchange (signing in on the page asked for): route by hand.
  if (location.hash === next) route(); else location.hash = next;
}

async function route() {
  const { parts, params } = parseHash();
  const page = parts[0] || "fleet";
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (page !== "login" && !session) {
    if (!sessionStorage.getItem(TOKEN_KEY)) return loginPage(params);
    try {
      session = (await api("/api/v1/session")).body;
    } catch (e) {
      if (e.status !== 401) show(problemView(e));
      return;
    }
    renderWho();
  }
  try {
    switch (page) {
      case "login": return loginPage(params);
      case "fleet": return await fleetPage(params);
      case "placements": return await placementsPage(params);
      case "clusters": return await clusterPage(parts[1], params);
      case "applications":
        return parts[2] ? await applicationPage(parts[1], parts[2]) : await applicationsPage();
      case "compose": return await composePage(params);
      case "team": return await teamPage();
      default: show(h("h1", {}, "Not found"), h("p", {}, "No such page."));
    }
  } catch (e) {
    if (e.status === 401) return;
    show(h("h1", {}, "Something went wrong"), problemView(e));
  }
}

function renderWho() {
  const who = document.getElementById("who");
  document.querySelectorAll(".write-only").forEach((el) => { el.hidden = !(session && session.canWrite); });
  if (!session) { who.replaceChildren(); return; }
  who.replaceChildren(
    h("span", {}, `${session.name} · team ${session.team} · ${session.role}`),
    h("button", { class: "secondary", type: "button", onclick: () => {
      sessionStorage.removeItem(TOKEN_KEY); session = null; renderWho(); go("login");
    } }, "Sign out"));
}

// ------------------------------------------------------------------ login

function loginPage(params) {
  document.title = "Sign in · atoll";
  const input = h("input", { type: "password", id: "token", name: "token", class: "wide", autocomplete: "off", required: true });
  const err = h("p", { class: "error", role: "alert" }, params.get("reason") && params.get("reason") !== "sign in" ? params.get("reason") : "");
  const form = h("form", { class: "panel", onsubmit: async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    session = null;
    try {
      session = (await api("/api/v1/session")).body;
      renderWho();
      go("fleet");
    } catch (e) {
      err.textContent = e.message;
    }
  } },
  h("p", {}, h("label", { for: "token" }, "Token"), " ",
    h("span", { class: "muted" }, "an atoll token (", h("code", {}, "atoll token create"), ") or an ID token from the configured OIDC issuer")),
  h("div", { class: "row" }, input, h("button", { type: "submit" }, "Sign in")), err);
  show(h("h1", {}, "Sign in to atoll"), form);
  input.focus();
}

// ------------------------------------------------------------------ fleet map

function regionOf(c) { return c.labels.region || c.labels["topology.kubernetes.io/region"] || "(no region)"; }
function zoneOf(c) { return c.labels.zone || c.labels["topology.kubernetes.io/zone"] || "(no zone)"; }

function selectorForm(params, page, extra) {
  const input = h("input", { type: "text", id: "selector", name: "selector", class: "wide",
    value: params.get("sel") || "", placeholder: "tier=edge,region in (eu-west)", spellcheck: "false" });
  return h("form", { class: "row", role: "search", onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams(params);
    if (input.value.trim()) p.set("sel", input.value.trim()); else p.delete("sel");
    p.delete("region"); p.delete("zone");
    go(page, p);
  } }, h("label", { for: "selector" }, "Label selector"), input, h("button", { type: "submit" }, "Filter"), extra);
}

async function fetchFleet(params, placements) {
  const q = new URLSearchParams();
  if (params.get("sel")) q.set("labelSelector", params.get("sel"));
  // The map needs no placements: without them the answer is half the size at scale.
  if (!placements) q.set("placements", "false");
  return (await api("/api/v1/fleet?" + q)).body;
}

async function fleetPage(params) {
  document.title = "Fleet map · atoll";
  loading("Loading the fleet…");
  const t0 = performance.now();
  const fleet = await fetchFleet(params, false);
  const region = params.get("region"), zone = params.get("zone");
  let clusters = fleet.clusters;
  if (region) clusters = clusters.filter((c) => regionOf(c) === region);
  if (zone) clusters = clusters.filter((c) => zoneOf(c) === zone);
  const counts = { ok: 0, busy: 0, warn: 0, bad: 0, unknown: 0 };
  for (const c of clusters) counts[stateOf(c)]++;
  const crumbs = h("p", { class: "row" },
    link("#/fleet" + (params.get("sel") ? "?sel=" + enc(params.get("sel")) : ""), "All regions"),
    region ? [" › ", link(`#/fleet?${new URLSearchParams(Object.assign({}, params.get("sel") ? { sel: params.get("sel") } : {}, { region }))}`, region)] : null,
    zone ? [" › ", zone] : null);
  const detail = clusters.length <= MAP_DETAIL_LIMIT;
  const svg = detail ? clusterMap(clusters, fleet.logicalClusters, fleet) : zoneMap(clusters, params);
  const summary = h("div", { class: "cards" },
    h("div", { class: "card" }, h("div", { class: "n", id: "cluster-count" }, String(clusters.length)), h("div", {}, `clusters shown (of ${fleet.total})`)),
    STATES.map(([k, label]) => h("div", { class: "card" }, h("div", { class: "n" }, String(counts[k])), h("div", {}, h("span", { class: `swatch s-${k}`, "aria-hidden": "true" }), label))),
    h("div", { class: "card" }, h("div", { class: "n" }, String(fleet.applications.length)), h("div", {}, "applications you can see")));
  show(
    h("h1", {}, "Fleet map"),
    selectorForm(params, "fleet"),
    crumbs,
    summary,
    legend(),
    h("p", { class: "muted" }, detail
      ? "Each square is a cluster (select one for its page); dashed outlines are logical clusters, lines their links."
      : `${clusters.length} clusters: zones are drawn with their counts; select a zone to see its clusters.`),
    h("div", { class: "map-wrap" }, svg),
    zoneTable(clusters),
    h("p", { class: "muted", id: "commit" }, fleet.commit ? `HEAD ${fleet.commit.slice(0, 12)}` : "nothing committed yet"),
  );
  document.body.dataset.fleetRendered = String(Math.round(performance.now() - t0));
}

function groupByRegionZone(clusters) {
  const regions = new Map();
  for (const c of clusters) {
    const r = regionOf(c), z = zoneOf(c);
    if (!regions.has(r)) regions.set(r, new Map());
    const zones = regions.get(r);
    if (!zones.has(z)) zones.set(z, []);
    zones.get(z).push(c);
  }
  return [...regions.entries()].sort((a, b) => a[0].localeCompare(b[0]))
    .map(([r, zones]) => [r, [...zones.entries()].sort((a, b) => a[0].localeCompare(b[0]))]);
}

// One square per cluster, zones as boxes inside region columns.
function clusterMap(clusters, logical, fleet) {
  const groups = groupByRegionZone(clusters);
  const SQ = 16, GAP = 4, PAD = 10, ZW = 8; // ZW squares per zone row
  const zoneW = PAD * 2 + ZW * (SQ + GAP);
  const pos = new Map();
  const g = s("g", {});
  let x = 10, top = 0, rowH = 0, maxW = 0;
  for (const [region, zones] of groups) {
    const colW = zoneW + 20;
    // Regions wrap to the next row past the page's width.
    if (x > 10 && x + colW > MAP_WIDTH) { x = 10; top += rowH; rowH = 0; }
    let y = top + 34;
    const regionG = s("g", {});
    for (const [zone, cs] of zones) {
      const rows = Math.max(1, Math.ceil(cs.length / ZW));
      const zh = 26 + rows * (SQ + GAP) + PAD;
      regionG.append(s("rect", { x: x + 10, y, width: zoneW, height: zh, rx: 6, fill: "#f4f6f8", stroke: "#c9d1da" }),
        s("text", { x: x + 18, y: y + 16, "font-size": 12, fill: "#4f5864", text: `${zone} (${cs.length})` }));
      cs.forEach((c, i) => {
        const cx = x + 10 + PAD + (i % ZW) * (SQ + GAP), cy = y + 24 + Math.floor(i / ZW) * (SQ + GAP);
        pos.set(c.name, [cx + SQ / 2, cy + SQ / 2]);
        const st = stateOf(c);
        regionG.append(s("a", { href: `#/clusters/${enc(c.name)}`, "aria-label": `${c.name}: ${stateLabel(c)}`, class: "cluster" },
          s("rect", { x: cx, y: cy, width: SQ, height: SQ, rx: 3, fill: COLOURS[st], "data-cluster": c.name, "data-state": st },
            s("title", { text: `${c.name} — ${stateLabel(c)} — ${c.provider}` }))));
      });
      y += zh + 10;
    }
    regionG.prepend(s("rect", { x, y: top + 8, width: colW, height: y - top - 4, rx: 8, fill: "none", stroke: "#8c959f" }),
      s("text", { x: x + 10, y: top + 25, "font-size": 14, "font-weight": 700, fill: "#1b1f24", text: region }));
    g.append(regionG);
    rowH = Math.max(rowH, y - top + 16);
    x += colW + 16;
    maxW = Math.max(maxW, x);
  }
  const maxH = top + rowH;
  // Logical clusters: members outlined, links drawn.
  const palette = ["#8250df", "#bf3989", "#0969da", "#1a7f37", "#9a6700"];
  (logical || []).forEach((lc, i) => {
    const colour = palette[i % palette.length];
    const members = lc.members.filter((m) => pos.has(m));
    if (!members.length) return;
    const lg = s("g", { "data-logical": lc.name }, s("title", { text: `logical cluster ${lc.name}: ${lc.members.join(", ")}` }));
    for (const m of members) {
      const [cx, cy] = pos.get(m);
      lg.append(s("rect", { x: cx - 11, y: cy - 11, width: 22, height: 22, rx: 5, fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": "4 2" }));
    }
    let pairs = [];
    const links = lc.connectivity && lc.connectivity.links;
    if (links && links.length) pairs = links.map((l) => [l.a, l.b]);
    else if (lc.connectivity) for (let a = 0; a < members.length; a++) for (let b = a + 1; b < members.length; b++) pairs.push([members[a], members[b]]);
    for (const [a, b] of pairs) {
      if (!pos.has(a) || !pos.has(b)) continue;
      const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
      lg.append(s("line", { x1, y1, x2, y2, stroke: colour, "stroke-width": 1.5, opacity: 0.8 }));
    }
    g.append(lg);
  });
  const width = Math.max(maxW, 300), height = Math.max(maxH, 80);
  return s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", id: "fleet-map",
    "aria-label": `Fleet map: ${clusters.length} clusters in ${groups.length} regions` }, g);
}

// Zones as boxes with a count and a bar of states; selecting one drills down.
function zoneMap(clusters, params) {
  const groups = groupByRegionZone(clusters);
  const ZW = 170, ZH = 58, COLS = 2;
  const g = s("g", {});
  let x = 10, top = 0, rowH = 0, maxW = 0;
  for (const [region, zones] of groups) {
    const colW = COLS * (ZW + 8) + 16;
    if (x > 10 && x + colW > MAP_WIDTH) { x = 10; top += rowH; rowH = 0; }
    const rows = Math.ceil(zones.length / COLS);
    const rh = 40 + rows * (ZH + 8);
    const total = zones.reduce((n, z) => n + z[1].length, 0);
    const rp = new URLSearchParams(params); rp.set("region", region); rp.delete("zone");
    g.append(s("rect", { x, y: top + 8, width: colW, height: rh, rx: 8, fill: "none", stroke: "#8c959f" }),
      s("a", { href: `#/fleet?${rp}` }, s("text", { x: x + 10, y: top + 28, "font-size": 14, "font-weight": 700, fill: "#1b1f24", text: `${region} · ${total}` })));
    zones.forEach(([zone, cs], i) => {
      const zx = x + 8 + (i % COLS) * (ZW + 8), zy = top + 40 + Math.floor(i / COLS) * (ZH + 8);
      const counts = { ok: 0, busy: 0, warn: 0, bad: 0, unknown: 0 };
      for (const c of cs) counts[stateOf(c)]++;
      const zp = new URLSearchParams(params); zp.set("region", region); zp.set("zone", zone);
      const a = s("a", { href: `#/fleet?${zp}`, "aria-label": `${zone}: ${cs.length} clusters — ` +
        STATES.filter(([k]) => counts[k]).map(([k, l]) => `${counts[k]} ${l}`).join(", ") },
        s("rect", { x: zx, y: zy, width: ZW, height: ZH, rx: 6, fill: "#f4f6f8", stroke: "#c9d1da", "data-zone": zone }),
        s("text", { x: zx + 8, y: zy + 18, "font-size": 12, fill: "#1b1f24", text: zone }),
        s("text", { x: zx + ZW - 8, y: zy + 18, "font-size": 13, "font-weight": 700, "text-anchor": "end", fill: "#1b1f24", text: String(cs.length) }));
      let bx = zx + 8;
      const bw = ZW - 16;
      for (const [k] of STATES) {
        if (!counts[k]) continue;
        const w = Math.max(2, (bw * counts[k]) / cs.length);
        a.append(s("rect", { x: bx, y: zy + 30, width: w, height: 14, fill: COLOURS[k] }));
        bx += w;
      }
      g.append(a);
    });
    rowH = Math.max(rowH, rh + 16);
    x += colW + 12;
    maxW = Math.max(maxW, x);
  }
  const width = Math.max(maxW, 300), height = Math.max(top + rowH, 80);
  return s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", id: "fleet-map",
    "aria-label": `Fleet map: ${clusters.length} clusters in ${groups.length} regions, by zone` }, g);
}

function zoneTable(clusters) {
  const groups = groupByRegionZone(clusters);
  const rows = [];
  for (const [region, zones] of groups) for (const [zone, cs] of zones) {
    const counts = { ok: 0, busy: 0, warn: 0, bad: 0, unknown: 0 };
    for (const c of cs) counts[stateOf(c)]++;
    rows.push(h("tr", {}, h("td", {}, region), h("td", {}, zone), h("td", {}, String(cs.length)),
      STATES.map(([k]) => h("td", {}, String(counts[k])))));
  }
  return h("details", {}, h("summary", {}, "The map as a table"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Region"), h("th", { scope: "col" }, "Zone"),
      h("th", { scope: "col" }, "Clusters"), STATES.map(([, l]) => h("th", { scope: "col" }, l)))), h("tbody", {}, rows)));
}

// ------------------------------------------------------------------ placement matrix

async function placementsPage(params) {
  document.title = "Placements · atoll";
  loading("Loading placements…");
  const fleet = await fetchFleet(params, true);
  const clusters = fleet.clusters;
  const apps = fleet.applications;
  const keys = new Set();
  for (const c of clusters) for (const k of Object.keys(c.labels)) keys.add(k);
  const grouped = params.get("group") || (clusters.length > MATRIX_DETAIL_LIMIT ? (keys.has("region") ? "region" : [...keys][0]) : "");
  const select = h("select", { id: "group", name: "group", onchange: () => {
    const p = new URLSearchParams(params);
    if (select.value) p.set("group", select.value); else p.delete("group");
    go("placements", p);
  } }, h("option", { value: "" }, "each cluster"),
  [...keys].sort().map((k) => h("option", { value: k, selected: k === grouped }, k)));
  let head, body;
  if (!grouped) {
    head = h("tr", {}, h("th", { scope: "col" }, "Application"), h("th", { scope: "col" }, "Revision"),
      clusters.map((c) => h("th", { scope: "col", class: "rot" }, link(`#/clusters/${enc(c.name)}`, c.name))));
    const placed = clusters.map((c) => new Set(c.apps));
    body = apps.map((a, i) => h("tr", {}, h("th", { scope: "row" }, appLink(a.name)), h("td", {}, h("code", {}, a.revision || "")),
      clusters.map((c, j) => placed[j].has(i)
        ? h("td", { class: "cell yes", "data-app": a.name, "data-cluster": c.name },
          h("span", { class: `swatch s-${stateOf(c)}`, "aria-hidden": "true" }),
          link(`#/clusters/${enc(c.name)}?focus=why`, "✓", { "aria-label": `${a.name} is placed on ${c.name} (${stateLabel(c)}): why`, title: `${a.revision} on ${c.name}, ${stateLabel(c)} — why?` }))
        : h("td", { class: "cell no", "data-app": a.name, "data-cluster": c.name }, h("span", { "aria-label": `${a.name} is not placed on ${c.name}` }, "·")))));
  } else {
    const groups = new Map();
    for (const c of clusters) {
      const v = c.labels[grouped] ?? "(none)";
      if (!groups.has(v)) groups.set(v, []);
      groups.get(v).push(c);
    }
    const cols = [...groups.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    head = h("tr", {}, h("th", { scope: "col" }, "Application"), h("th", { scope: "col" }, "Revision"),
      cols.map(([v, cs]) => h("th", { scope: "col", class: "rot" }, `${grouped}=${v}`, h("br", {}), h("span", { class: "muted" }, `${cs.length} clusters`))));
    const counts = cols.map(([, cs]) => {
      const n = new Array(apps.length).fill(0);
      for (const c of cs) for (const i of c.apps) n[i]++;
      return n;
    });
    body = apps.map((a, i) => h("tr", {}, h("th", { scope: "row" }, appLink(a.name)), h("td", {}, h("code", {}, a.revision || "")),
      cols.map(([v, cs], j) => {
        const n = counts[j][i];
        const p = new URLSearchParams(); p.set("sel", `${grouped}=${v}`);
        // Shade by the share of the group's clusters it is on (quartiles).
        const cls = n === 0 ? "no" : n === cs.length ? "yes" : `part q${Math.min(3, Math.floor((4 * n) / cs.length))}`;
        return h("td", { class: `cell ${cls}`, "data-app": a.name, "data-group": v },
          n ? link(`#/placements?${p}`, `${n}/${cs.length}`, { "aria-label": `${a.name}: on ${n} of ${cs.length} clusters with ${grouped}=${v}` }) : "0");
      })));
  }
  show(h("h1", {}, "Placement matrix"),
    selectorForm(params, "placements", [h("label", { for: "group" }, "Columns"), select]),
    h("p", { class: "muted" }, `${apps.length} applications × ${clusters.length} clusters` + (grouped ? `, grouped by ${grouped}` : "") +
      ". A cell links to why the application is there (which TargetPolicy matched which labels)."),
    h("div", { class: "matrix-wrap" }, h("table", { class: "matrix", id: "matrix" }, h("thead", {}, head), h("tbody", {}, body))));
}

function appLink(full) {
  const [team, name] = full.split("/");
  return link(`#/applications/${enc(team)}/${enc(name)}`, full);
}

// ------------------------------------------------------------------ cluster page

function provenanceRows(obj, prefix, rows, inherited) {
  // An item with a `from` and no `value` (an add-on) gives its source to each of its fields.
  const from = obj && typeof obj.from === "string" && !("value" in obj) ? obj.from : inherited || "";
  for (const [k, v] of Object.entries(obj || {})) {
    if (k === "name" || k === "labels" || (k === "from" && from)) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v) && "from" in v && "value" in v) {
      rows.push([path, v.value, v.from]);
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (item && typeof item === "object") provenanceRows(item, `${path}[${item.name || item.addon || i}]`, rows, from);
        else rows.push([`${path}[${i}]`, item, from]);
      });
    } else if (v && typeof v === "object") {
      provenanceRows(v, path, rows, from);
    } else {
      rows.push([path, v, from]);
    }
  }
  return rows;
}

function fmt(v) { return v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v); }

async function clusterPage(name, params) {
  document.title = `${name} · atoll`;
  loading(`Loading ${name}…`);
  const [ex, tl] = await Promise.all([
    api(`/api/v1/clusters/${enc(name)}/explain`).then((r) => r.body),
    api(`/api/v1/timelines/clusters/${enc(name)}`).then((r) => r.body),
  ]);
  const st = stateOf({ phase: ex.phase, sync: ex.sync && ex.sync.state });
  const rows = provenanceRows(ex.effective, "", []);
  show(
    h("h1", {}, h("span", { class: `swatch s-${st}`, "aria-hidden": "true" }), name),
    h("p", {}, stateLabel({ phase: ex.phase, sync: ex.sync && ex.sync.state }),
      ex.sync && ex.sync.message ? ` — ${ex.sync.message}` : "",
      h("span", { class: "muted" }, ` · declared in ${ex.origin.file}${ex.origin.line ? ":" + ex.origin.line : ""}`)),
    h("h2", {}, "Labels"),
    h("p", {}, Object.entries(ex.labels).map(([k, v]) => h("code", { class: "panel", style: null }, `${k}=${v}`)).flatMap((x) => [x, " "])),
    h("h2", {}, "Effective spec and where each value comes from"),
    h("table", { id: "provenance" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "From"))),
      h("tbody", {}, rows.map(([f, v, from]) => h("tr", {}, h("td", {}, h("code", {}, f)), h("td", {}, h("code", {}, fmt(v))), h("td", {}, from))))),
    h("h2", {}, "Address allocations"),
    Object.keys(ex.allocations || {}).length ? h("table", { id: "allocations" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Pool"), h("th", { scope: "col" }, "Allocated"))),
      h("tbody", {}, Object.entries(ex.allocations).map(([pool, cidr]) => h("tr", {}, h("td", {}, pool), h("td", {}, h("code", {}, cidr)))))) : h("p", { class: "muted" }, "None."),
    h("h2", { id: "why" }, `Applications placed here (${ex.applications.length})`),
    ex.applications.length ? h("table", { id: "placed" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Application"), h("th", { scope: "col" }, "Revision"), h("th", { scope: "col" }, "Why"))),
      h("tbody", {}, ex.applications.map((a) => h("tr", {}, h("td", {}, appLink(a.application)), h("td", {}, h("code", {}, a.revision || "")),
        h("td", {}, h("ul", {}, a.reasons.map((r) => h("li", {}, r)))))))) : h("p", { class: "muted" }, "None you can see."),
    h("h2", {}, "Cluster API objects (management cluster, at HEAD)"),
    ex.management.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "File"), h("th", { scope: "col" }, "Objects"))),
      h("tbody", {}, ex.management.map((f) => h("tr", {}, h("td", {}, h("code", {}, f.file)),
        h("td", {}, f.objects.map((o) => h("div", {}, h("code", {}, `${o.kind} ${o.namespace ? o.namespace + "/" : ""}${o.name}`)))))))) : h("p", { class: "muted" }, "None committed."),
    h("h2", {}, "Timeline"),
    timeline(tl.events, false),
  );
  const focus = params && params.get("focus");
  if (focus && document.getElementById(focus)) document.getElementById(focus).scrollIntoView();
}

// ------------------------------------------------------------------ applications

async function applicationsPage() {
  document.title = "Applications · atoll";
  loading();
  const list = (await api("/apis/atoll.dev/v1alpha1/applications")).body;
  const items = list.items || [];
  show(h("h1", {}, "Applications"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Team"), h("th", { scope: "col" }, "Application"), h("th", { scope: "col" }, "Components"), h("th", { scope: "col" }, "Labels"))),
      h("tbody", {}, items.map((a) => h("tr", {}, h("td", {}, a.metadata.namespace),
        h("td", {}, appLink(`${a.metadata.namespace}/${a.metadata.name}`)),
        h("td", {}, String(((a.spec || {}).components || []).length)),
        h("td", {}, Object.entries(a.metadata.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")))))));
}

function mayWrite(team) {
  return session && session.canWrite && (session.role === "admin" || session.team === team);
}

async function applicationPage(team, name) {
  document.title = `${team}/${name} · atoll`;
  loading(`Loading ${team}/${name}…`);
  const [obj, where, tl, fleet] = await Promise.all([
    api(`/apis/atoll.dev/v1alpha1/namespaces/${enc(team)}/applications/${enc(name)}`).then((r) => r.body),
    api(`/api/v1/placements?application=${enc(team + "/" + name)}`).then((r) => r.body).catch(() => ({ clusters: [] })),
    api(`/api/v1/timelines/applications/${enc(team)}/${enc(name)}`).then((r) => r.body),
    api("/api/v1/fleet?placements=false").then((r) => r.body),
  ]);
  const byName = new Map(fleet.clusters.map((c) => [c.name, c]));
  const canWrite = mayWrite(team);
  show(
    h("h1", {}, `${team}/${name}`),
    h("p", {}, `Revision `, h("code", {}, where.revision || ""), where.atHead ? ` · at HEAD on ${where.atHead.clusters} of ${where.atHead.of} clusters` : "",
      canWrite ? [" · ", link(`#/compose?app=${enc(team + "/" + name)}`, "Edit in the change composer")] : null),
    h("h2", {}, `Runs on ${where.clusters.length} clusters`),
    h("p", { id: "app-clusters" }, where.clusters.slice(0, 400).map((name) => {
      const c = byName.get(name) || { phase: "Unknown" };
      return h("span", { class: "chip" }, h("span", { class: `swatch s-${stateOf(c)}`, "aria-hidden": "true" }),
        link(`#/clusters/${enc(name)}?focus=why`, name, { title: `${stateLabel(c)} — why is it here?` }), " ");
    }), where.clusters.length > 400 ? `… and ${where.clusters.length - 400} more` : ""),
    h("h2", {}, "Spec"),
    h("pre", { id: "app-spec", tabindex: 0 }, JSON.stringify(obj.spec, null, 2)),
    h("h2", {}, "Timeline"),
    timeline(tl.events, canWrite, { team, name }),
  );
}

// A line diff (longest common subsequence) of two objects' pretty JSON.
function diffLines(a, b) {
  const x = a ? JSON.stringify(a, null, 2).split("\n") : [];
  const y = b ? JSON.stringify(b, null, 2).split("\n") : [];
  if (x.length * y.length > 4e6) return [["hunk", "(too large to diff here)"]];
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.push(["+", y[j]]); j++; }
    else { out.push(["-", x[i]]); i++; }
  }
  // Only changed lines with two lines of context.
  const keep = out.map(([t]) => t !== " ");
  return out.filter((_, k) => keep.slice(Math.max(0, k - 2), k + 3).some(Boolean));
}

function diffView(a, b) {
  return h("pre", { class: "diff", tabindex: 0 }, diffLines(a, b).map(([t, line]) =>
    h("span", { class: t === "+" ? "add" : t === "-" ? "del" : t === "hunk" ? "hunk" : "" }, `${t} ${line}\n`)));
}

function timeline(events, canRollback, app) {
  if (!events || !events.length) return h("p", { class: "muted" }, "No events.");
  return h("ol", { class: "timeline", reversed: true }, events.slice().reverse().map((e) => {
    const rb = canRollback && app && e.after && e.kind === "Application"
      ? h("button", { type: "button", class: "secondary", "data-event": e.id, onclick: (ev) => rollback(ev.target, app, e) }, `Roll back to event ${e.id}`)
      : null;
    return h("li", { "data-event": e.id },
      h("div", { class: "row" }, h("strong", {}, e.action), ` ${e.kind} ${e.namespace ? e.namespace + "/" : ""}${e.name}`,
        h("span", { class: "muted" }, `by ${e.actor} at ${e.at}`), e.commit ? h("code", {}, e.commit.slice(0, 12)) : null, rb),
      e.message ? h("div", {}, e.message) : null,
      e.before || e.after ? h("details", {}, h("summary", {}, "What changed"), diffView(e.before, e.after)) : null);
  }));
}

async function rollback(button, app, e) {
  if (!confirm(`Roll ${app.team}/${app.name} back to its spec at event ${e.id}?`)) return;
  button.disabled = true;
  try {
    const r = await api(`/apis/atoll.dev/v1alpha1/namespaces/${enc(app.team)}/applications/${enc(app.name)}/rollback`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ toEvent: e.id, message: `rolled back from the web UI to event ${e.id}` }),
    });
    toast(`Rolled back: commit ${(r.headers.get("x-atoll-commit") || "").slice(0, 12) || "(no file changed)"}`);
    await route();
  } catch (err) {
    button.disabled = false;
    main().prepend(problemView(err));
  }
}

// ------------------------------------------------------------------ change composer

function toYamlish(obj) {
  // JSON is YAML: the plan and apply endpoints take it as it is.
  return JSON.stringify(obj, null, 2);
}

async function composePage(params) {
  document.title = "Change · atoll";
  if (!session.canWrite) {
    show(h("h1", {}, "Change"), h("p", {}, "Your role (reader) cannot change the fleet."));
    return;
  }
  let initial = "";
  const app = params.get("app");
  if (app) {
    const [team, name] = app.split("/");
    const obj = (await api(`/apis/atoll.dev/v1alpha1/namespaces/${enc(team)}/applications/${enc(name)}`)).body;
    const md = { name: obj.metadata.name, namespace: obj.metadata.namespace };
    if (obj.metadata.labels) md.labels = obj.metadata.labels;
    initial = toYamlish({ apiVersion: obj.apiVersion, kind: obj.kind, metadata: md, spec: obj.spec });
  }
  const text = h("textarea", { id: "decl", name: "decl", spellcheck: "false" });
  text.value = initial;
  const message = h("input", { type: "text", id: "message", name: "message", class: "wide", placeholder: "why (goes into the commit and the history)" });
  const out = h("div", { id: "plan-out", "aria-live": "polite" });
  const planBtn = h("button", { type: "button", id: "plan" }, "Plan");
  const applyBtn = h("button", { type: "button", id: "apply", disabled: true }, "Apply");
  const body = () => ({ method: "POST", headers: { "Content-Type": "application/yaml" }, body: text.value });
  planBtn.addEventListener("click", async () => {
    out.replaceChildren(h("p", { class: "loading", role: "status" }, "Planning…"));
    applyBtn.disabled = true;
    try {
      const r = (await api("/api/v1/plan", body())).body;
      out.replaceChildren(planView(r.plans));
      applyBtn.disabled = false;
    } catch (e) {
      out.replaceChildren(problemView(e));
    }
  });
  applyBtn.addEventListener("click", async () => {
    applyBtn.disabled = true; planBtn.disabled = true;
    const q = message.value.trim() ? "?message=" + enc(message.value.trim()) : "";
    try {
      const started = (await api("/api/v1/apply" + q, body())).body;
      await followTask(started.task, out);
    } catch (e) {
      out.replaceChildren(problemView(e));
    } finally {
      planBtn.disabled = false;
    }
  });
  show(h("h1", {}, "Change the fleet"),
    h("p", { class: "muted" }, "Paste or edit declarations (YAML or JSON, several separated by ---). Plan shows what each cluster's package would become; Apply runs it as a task and commits."),
    h("p", {}, h("label", { for: "decl" }, "Declarations")), text,
    h("p", { class: "row" }, h("label", { for: "message" }, "Message"), message),
    h("p", { class: "row" }, planBtn, applyBtn), out);
}

function planView(plans) {
  if (!plans.length) return h("p", { id: "plan-summary" }, "No cluster changes: the repository already holds this.");
  return h("div", {}, h("p", { id: "plan-summary" }, `${plans.length} package${plans.length === 1 ? "" : "s"} change:`),
    plans.slice(0, 200).map((p) => h("details", { class: "plan" }, h("summary", {}, `${p.cluster}: ${p.status} (+${p.added} ~${p.modified} -${p.removed})`),
      p.files.map((f) => h("div", {}, h("code", {}, `${f.change} ${f.path}`), f.diff ? h("pre", { class: "diff", tabindex: 0 },
        f.diff.split("\n").map((l) => h("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : l.startsWith("@@") ? "hunk" : "" }, l + "\n"))) : null)))),
    plans.length > 200 ? h("p", {}, `… and ${plans.length - 200} more`) : null);
}

async function followTask(id, out) {
  const bar = h("progress", { "aria-label": "Change in progress" });
  const steps = h("ol", { class: "steps", id: "task-steps" });
  const status = h("p", { role: "status" }, "Applying…");
  out.replaceChildren(status, bar, steps);
  for (;;) {
    const t = (await api(`/api/v1/tasks/${enc(id)}`)).body;
    steps.replaceChildren(...t.steps.map((st, i) => h("li", { class: i === t.steps.length - 1 && t.state === "running" ? "now" : "" }, st.name)));
    if (t.state !== "running") {
      bar.remove();
      if (t.state === "succeeded") {
        const commit = t.result.commit;
        status.replaceChildren();
        append(status, [h("strong", {}, "Applied. "), commit ? ["Commit ", h("code", { id: "commit-id" }, commit)] : h("span", { id: "no-commit" }, "No file changed."),
          ` · change ${t.result.changeId}`]);
      } else {
        status.replaceChildren(problemView({ status: t.error.status, problem: t.error, message: t.error.detail }));
      }
      return t;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

// ------------------------------------------------------------------ team

async function teamPage() {
  document.title = `Team ${session.team} · atoll`;
  loading();
  const tl = (await api(`/api/v1/timelines/teams/${enc(session.team)}`)).body;
  show(h("h1", {}, `Team ${session.team}`),
    h("p", {}, `Signed in as ${session.name} (${session.role}). `,
      session.role === "admin" ? "Admins see every team's applications and events." : "You see your team's applications, events and tasks only."),
    h("h2", {}, "Recent events"), timeline(tl.events, false));
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
