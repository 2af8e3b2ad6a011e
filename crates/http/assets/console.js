// Gregor console: one page over the admin API (/api/v1/), hash-routed views, no build
// step and no dependencies. Every piece of server text goes through `h` (escaping).
"use strict";

/* ------------------------------------------------------------------ helpers */

class Raw { constructor(s) { this.s = s; } toString() { return this.s; } }

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ESC[c]);

function piece(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(piece).join("");
  if (v === null || v === undefined || v === false) return "";
  return esc(v);
}

/** Tagged template: interpolations are escaped unless they are `h` results. */
function h(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += piece(v) + strings[i + 1]; });
  return new Raw(out);
}

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const enc = encodeURIComponent;

function fmtNum(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function fmtRate(r) { return r === null || r === undefined ? "–" : r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US"); }

function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  const d = new Date(ms), p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A table; a header starting with "#" is a right-aligned number column. */
function table(testid, heads, rows, empty = "Nothing here.", cls = "") {
  const th = heads.map((x) => (x[0] === "#" ? h`<th class="num">${x.slice(1)}</th>` : h`<th>${x}</th>`));
  const body = rows.length ? rows : h`<tr><td colspan="${heads.length}" class="muted">${empty}</td></tr>`;
  return h`<table class="grid ${cls}" data-testid="${testid}"><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

/** A number shown with its raw value in data-value (for scripts and tests). */
const num = (n, testid) => h`<span data-testid="${testid}" data-value="${n ?? ""}">${fmtNum(n)}</span>`;
const stat = (label, value, extra = "") => h`<div class="stat ${extra}"><div class="stat-label">${label}</div><div class="stat-value">${value}</div></div>`;
const badge = (text, kind = "") => h`<span class="badge ${kind}">${text}</span>`;
const topicHref = (name, tab) => `#/topics/${enc(name)}${tab ? "/" + tab : ""}`;
const groupHref = (id) => `#/groups/${enc(id)}`;

/** Messages per second from successive totals. */
function rateTracker() {
  let last = null;
  return (total) => {
    const now = performance.now(), prev = last;
    last = { t: now, v: total };
    return prev && total !== null && total !== undefined && now > prev.t ? Math.max(0, ((total - prev.v) * 1000) / (now - prev.t)) : null;
  };
}

/* ------------------------------------------------------------------ API and errors */

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.error = body && body.error;
  }
}

/** A call of the admin API; a refusal throws an ApiError with the server's message. */
async function api(method, path, body) {
  const headers = { "X-Gregor-Console": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/** A new element from HTML (an `h` result), appended to `parent`. */
function mount(parent, html) {
  parent.insertAdjacentHTML("beforeend", html);
  return parent.lastElementChild;
}

function toast(message, kind = "error") {
  const t = mount($("#toasts"), h`<div class="toast ${kind}" data-testid="${kind === "error" ? "error" : "notice"}">
    <span>${message}</span><button type="button" aria-label="close">×</button></div>`);
  t.querySelector("button").onclick = () => t.remove();
  setTimeout(() => t.remove(), kind === "error" ? 10000 : 4000);
}

/** The one error handler: an expired session goes back to the login form. */
function fail(e) {
  if (e instanceof ApiError && e.status === 401 && session.user) return showLogin("Your session has ended: log in again.");
  console.error(e);
  toast(e.message || String(e));
}

function confirmBox(text, action = "Delete") {
  return new Promise((resolve) => {
    const m = mount(document.body, h`<div class="modal"><div class="dialog" role="dialog" data-testid="confirm"><p>${text}</p>
      <div class="actions"><button class="btn" data-testid="confirm-no">Cancel</button>
      <button class="btn danger" data-testid="confirm-yes">${action}</button></div></div></div>`);
    m.onclick = (e) => {
      const which = e.target.dataset.testid;
      if (which !== "confirm-yes" && which !== "confirm-no" && e.target !== m) return;
      m.remove();
      resolve(which === "confirm-yes");
    };
    $("[data-testid=confirm-yes]", m).focus();
  });
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) { // no clipboard API (plain http on another host): the old way
    const ta = mount(document.body, h`<textarea style="position:fixed;opacity:0"></textarea>`);
    ta.value = text;
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  toast("Copied to the clipboard", "ok");
}

/* ------------------------------------------------------------------ session */

const session = { user: null, role: null, cluster: null };
const isAdmin = () => session.role === "admin";

function showLogin(message) {
  stopTimers();
  session.user = session.role = null;
  [$("#shell").hidden, $("#login").hidden, $("#view").innerHTML, $("#login-password").value] = [true, false, "", ""];
  [$("#login-error").hidden, $("#login-error").textContent] = [!message, message || ""];
  $("#login-user").focus();
}

async function enter(who) {
  Object.assign(session, { user: who.user, role: who.role });
  [$("#login").hidden, $("#shell").hidden] = [true, false];
  [$("#user-name").textContent, $("#user-role").textContent] = [who.user, who.role];
  document.body.classList.toggle("viewer", !isAdmin());
  try {
    session.cluster = await api("GET", "/api/v1/cluster");
    $("#cluster-id").textContent = session.cluster.cluster_id;
  } catch (e) { fail(e); }
  route();
}

async function login(e) {
  e.preventDefault();
  const err = $("#login-error");
  err.hidden = true;
  try {
    const who = await api("POST", "/api/v1/login", { user: $("#login-user").value, password: $("#login-password").value });
    await enter(who);
  } catch (ex) {
    err.textContent = ex.status === 401 ? `Login failed: ${ex.message}` : ex.message;
    err.hidden = false;
  }
}

async function logout() {
  try { await api("POST", "/api/v1/logout"); } catch (e) { if (e.status !== 401) toast(e.message); }
  showLogin();
}

/* ------------------------------------------------------------------ router and polling */

const routes = [
  [/^\/$/, overviewView], [/^\/brokers$/, brokersView], [/^\/topics$/, topicsView],
  [/^\/topics\/([^/]+)(?:\/(messages|produce|configs))?$/, topicView], [/^\/groups$/, groupsView], [/^\/groups\/([^/]+)$/, groupView],
];

let timers = [];
let generation = 0;

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
  generation++;
}

/** Runs `fn` every `ms` while the current view is shown (errors go to `fail`). */
function every(ms, fn) {
  const gen = generation;
  let busy = false;
  timers.push(setInterval(async () => {
    if (busy || gen !== generation) return;
    busy = true;
    try { await fn(); } catch (e) { fail(e); } finally { busy = false; }
  }, ms));
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?");
  return { path, query: new URLSearchParams(qs) };
}

async function route() {
  if (!session.user) return;
  stopTimers();
  const gen = generation;
  const { path, query } = parseHash();
  const section = path.split("/")[1] || "";
  $$("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === section));
  const view = $("#view");
  view.innerHTML = h`<p class="muted">Loading…</p>`;
  for (const [re, fn] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const params = m.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
    const ctx = { params, query, view, alive: () => gen === generation };
    try {
      await fn(ctx);
    } catch (e) {
      if (!ctx.alive()) return;
      view.innerHTML = h`<p class="error" data-testid="view-error">${e.message}</p>`;
      fail(e);
    }
    return;
  }
  view.innerHTML = h`<h1>Not found</h1><p><a href="#/">Back to the overview</a></p>`;
}

/** Fetches `path` every `ms` and draws it while the view is shown. */
function refreshEvery(ctx, ms, path, draw) {
  every(ms, async () => {
    const data = await api("GET", path);
    if (ctx.alive()) draw(data);
  });
}

/** Sets the view's HTML only if the user has not moved on meanwhile. */
function paint(ctx, html) {
  if (!ctx.alive()) return false;
  ctx.view.innerHTML = html;
  return true;
}

/* ------------------------------------------------------------------ overview */

function diskBar(d) {
  if (!d || d.total_bytes === null || d.total_bytes === undefined) return h`<p class="muted">Disk usage not known.</p>`;
  const used = d.total_bytes - (d.free_bytes ?? 0);
  const pct = (n) => (d.total_bytes ? Math.min(100, (100 * n) / d.total_bytes) : 0).toFixed(1);
  return h`<div class="bar" title="${pct(used)}% used"><div class="bar-used" style="width:${pct(used)}%"></div>
      <div class="bar-gregor" style="width:${pct(d.size_bytes ?? 0)}%"></div></div>
    <p class="muted">Gregor's logs ${fmtBytes(d.size_bytes)} · disk used ${fmtBytes(used)} of ${fmtBytes(d.total_bytes)}
      · free ${fmtBytes(d.free_bytes)}</p>`;
}

function brokersTable(c) {
  const rows = c.brokers.map((b) => h`<tr data-testid="broker-row">
    <td>${b.id}${b.id === c.node_id ? h` ${badge("this node", "info")}` : ""}</td><td>${b.host}:${b.port}</td>
    <td>${b.rack ?? "–"}</td><td>${b.fenced ? badge("fenced", "bad") : badge("online", "good")}</td>
    <td>${b.id === c.node_id && c.active_controller_here ? badge("active controller", "info") : ""}</td><td>${b.epoch}</td></tr>`);
  return table("brokers-table", ["Id", "Address", "Rack", "State", "Role", "Epoch"], rows);
}

function overviewBody(c) {
  const warn = (n) => (n ? "warn" : "");
  return h`<div class="stats">
      ${stat("Brokers", h`${c.brokers.filter((b) => !b.fenced).length} / ${c.brokers.length}`)}
      ${stat("Topics", num(c.topics, "topic-count"))}
      ${stat("Partitions", num(c.partitions, "partition-count"))}
      ${stat("Under-replicated", num(c.under_replicated_partitions, "urp-count"), warn(c.under_replicated_partitions))}
      ${stat("Offline partitions", num(c.offline_partitions, "offline-count"), c.offline_partitions ? "bad" : "")}
    </div>
    <section class="card"><h2>Disk</h2><p class="muted">Log dir <code>${c.log_dir?.path ?? "–"}</code></p>${diskBar(c.log_dir)}</section>
    <section class="card"><h2>Brokers</h2>${brokersTable(c)}</section>`;
}

async function overviewView(ctx) {
  const c = await api("GET", "/api/v1/cluster");
  paint(ctx, h`<div class="page-head"><h1>Overview</h1><span class="muted">answered by node ${c.node_id}</span></div>
    <div id="overview" data-testid="overview">${overviewBody(c)}</div>`);
  refreshEvery(ctx, 5000, "/api/v1/cluster", (fresh) => { $("#overview").innerHTML = overviewBody(fresh); });
}

/* ------------------------------------------------------------------ brokers and configs */

function configsTable(configs, opts = {}) {
  const rows = configs.map((c) => {
    const value = c.sensitive ? h`<span class="muted">(sensitive)</span>` : c.value === null ? h`<span class="muted">null</span>` : c.value;
    const dynamic = /^DYNAMIC/.test(c.source);
    const edit = opts.editable && !c.read_only
      ? h`<button class="btn small" data-edit="${c.name}" data-testid="config-edit">Edit</button>` : "";
    return h`<tr data-config="${c.name}" class="${dynamic ? "override" : ""}"><td><code>${c.name}</code></td>
      <td class="config-value">${value}</td><td>${badge(c.source, dynamic ? "info" : "")}</td>
      <td>${c.read_only ? badge("read-only") : ""}${edit}</td></tr>`;
  });
  return table("configs-table", ["Name", "Value", "Source", ""], rows, "No config matches.", "configs");
}

/** A filter box and an "only overrides" switch over a config list. */
function filterConfigs(configs, root) {
  const q = ($(".config-filter", root)?.value || "").toLowerCase();
  const only = $(".config-only", root)?.checked;
  return configs.filter((c) => c.name.toLowerCase().includes(q) && (!only || /^DYNAMIC/.test(c.source)));
}

async function brokersView(ctx) {
  const c = await api("GET", "/api/v1/cluster");
  const configs = await api("GET", `/api/v1/brokers/${c.node_id}/configs`);
  if (!paint(ctx, h`<div class="page-head"><h1>Brokers</h1></div>
      <section class="card">${brokersTable(c)}</section>
      <section class="card" id="broker-configs"><div class="card-head"><h2>Configs of node ${c.node_id}</h2>
        <input class="config-filter search" placeholder="Filter configs" data-testid="config-filter">
        <label class="check"><input type="checkbox" class="config-only"> only dynamic</label></div>
        <div class="config-list"></div>
        <p class="muted">Other nodes show their configs in their own console.</p></section>`)) return;
  const root = $("#broker-configs");
  const draw = () => { $(".config-list", root).innerHTML = configsTable(filterConfigs(configs, root)); };
  root.oninput = draw;
  draw();
}

/* ------------------------------------------------------------------ topics */

const topicRates = new Map();

function topicRow(t) {
  if (!topicRates.has(t.name)) topicRates.set(t.name, rateTracker());
  const rate = topicRates.get(t.name)(t.messages_in_total);
  const health = t.offline_partitions ? badge(`${t.offline_partitions} offline`, "bad")
    : t.under_replicated_partitions ? badge(`${t.under_replicated_partitions} under-replicated`, "warn") : badge("ok", "good");
  const del = isAdmin() && !t.internal
    ? h`<button class="btn small danger" data-delete="${t.name}" data-testid="delete-topic">Delete</button>` : "";
  return h`<tr data-topic="${t.name}" data-testid="topic-row">
    <td><a href="${topicHref(t.name)}">${t.name}</a>${t.internal ? h` ${badge("internal")}` : ""}</td>
    <td class="num">${t.partitions}</td><td class="num">${t.replication_factor}</td><td>${health}</td>
    <td class="num">${fmtNum(t.messages)}</td><td class="num">${fmtBytes(t.size_bytes)}</td>
    <td class="num" data-testid="topic-rate">${fmtRate(rate)}</td><td class="actions">${del}</td></tr>`;
}

function createTopicForm() {
  return h`<form id="create-topic-form" class="card form-grid" data-testid="create-topic-form" hidden>
    <h2>New topic</h2>
    <label>Name <input id="ct-name" required pattern="[A-Za-z0-9._\\-]+" maxlength="249" placeholder="orders"></label>
    <label>Partitions <input id="ct-partitions" type="number" min="1" placeholder="broker default"></label>
    <label>Replication factor <input id="ct-rf" type="number" min="1" placeholder="broker default"></label>
    <label class="wide">Configs <textarea id="ct-configs" rows="3" placeholder="retention.ms=86400000&#10;cleanup.policy=compact"></textarea></label>
    <div class="actions wide"><button class="btn" type="button" id="ct-cancel">Cancel</button>
      <button class="btn primary" id="ct-submit" type="submit">Create topic</button></div></form>`;
}

/** `k=v` lines into an object. */
function parseConfigLines(text) {
  const out = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf("=");
    if (i < 1) throw new Error(`config line "${line}" is not key=value`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

async function createTopic(e) {
  e.preventDefault();
  const intOrNull = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  try {
    const name = $("#ct-name").value.trim();
    const body = { name, partitions: intOrNull("#ct-partitions"), replication_factor: intOrNull("#ct-rf") };
    const configs = parseConfigLines($("#ct-configs").value);
    if (Object.keys(configs).length) body.configs = configs;
    await api("POST", "/api/v1/topics", body);
    toast(`Topic ${name} created`, "ok");
    location.hash = topicHref(name);
  } catch (ex) { fail(ex); }
}

async function deleteTopic(name, after) {
  if (!(await confirmBox(h`Delete topic <b>${name}</b> and all its messages? This cannot be undone.`))) return;
  try {
    await api("DELETE", `/api/v1/topics/${enc(name)}`);
    toast(`Topic ${name} deleted`, "ok");
    after();
  } catch (e) { fail(e); }
}

async function topicsView(ctx) {
  let topics = await api("GET", "/api/v1/topics");
  if (!paint(ctx, h`<div class="page-head"><h1>Topics</h1><span class="spacer"></span>
      ${isAdmin() ? h`<button class="btn primary" id="create-topic-open" data-testid="create-topic-open">+ Create topic</button>` : ""}</div>
    ${isAdmin() ? createTopicForm() : ""}
    <section class="card"><div class="card-head">
      <input id="topic-search" class="search" placeholder="Search topics" data-testid="topic-search" value="${ctx.query.get("q") || ""}">
      <label class="check"><input type="checkbox" id="show-internal"> show internal topics</label></div>
      <div id="topics-list"></div></section>`)) return;
  const draw = () => {
    const q = $("#topic-search").value.toLowerCase(), internal = $("#show-internal").checked;
    const shown = topics.filter((t) => t.name.toLowerCase().includes(q) && (internal || !t.internal));
    $("#topics-list").innerHTML = table("topics-table", ["Name", "#Partitions", "#Replication", "Health", "#Messages", "#Size",
      "#Msgs in/s", ""], shown.map(topicRow), "No topic matches.");
  };
  $("#topic-search").oninput = draw;
  $("#show-internal").onchange = draw;
  $("#topics-list").onclick = (e) => {
    const b = e.target.closest("[data-delete]");
    if (b) deleteTopic(b.dataset.delete, route);
  };
  if (isAdmin()) {
    const form = $("#create-topic-form");
    $("#create-topic-open").onclick = () => { form.hidden = false; $("#ct-name").focus(); };
    $("#ct-cancel").onclick = () => { form.hidden = true; };
    form.onsubmit = createTopic;
  }
  draw();
  refreshEvery(ctx, 2000, "/api/v1/topics", (fresh) => { topics = fresh; draw(); });
}

/* ------------------------------------------------------------------ topic page */

function topicHead(name, tab, internal) {
  const tabs = [["", "Overview"], ["messages", "Messages"], ["produce", "Produce"], ["configs", "Configs"]];
  const del = isAdmin() && !internal
    ? h`<button class="btn danger" id="topic-delete" data-testid="delete-topic">Delete topic</button>` : "";
  return h`<div class="page-head"><h1><a href="#/topics" class="crumb">Topics</a> / <span data-testid="topic-name">${name}</span></h1>
      <span class="spacer"></span>${del}</div>
    <nav class="tabs">${tabs.map(([t, label]) => h`<a href="${topicHref(name, t)}" class="${t === (tab || "") ? "active" : ""}"
      data-testid="tab-${t || "overview"}">${label}</a>`)}</nav>`;
}

function partitionsTable(t) {
  const rows = t.partitions.map((p) => {
    const isr = p.replicas.map((r) => (p.isr.includes(r) ? h`<span class="replica in">${r}</span>` : h`<span class="replica out" title="out of sync">${r}</span>`));
    const msgs = p.high_watermark !== null && p.log_start_offset !== null ? p.high_watermark - p.log_start_offset : null;
    return h`<tr data-testid="partition-row" data-partition="${p.partition}"><td>${p.partition}</td>
      <td>${p.leader < 0 ? badge("offline", "bad") : p.leader}</td><td>${p.leader_epoch}</td><td>${p.replicas.join(", ")}</td>
      <td>${isr}</td><td class="num">${fmtNum(p.log_start_offset)}</td><td class="num">${fmtNum(p.high_watermark)}</td>
      <td class="num" data-testid="log-end">${fmtNum(p.log_end_offset)}</td><td class="num">${fmtNum(msgs)}</td><td class="num">${fmtBytes(p.size_bytes)}</td></tr>`;
  });
  return table("partitions-table", ["Partition", "Leader", "Epoch", "Replicas", "ISR", "#Log start", "#High watermark",
    "#Log end", "#Messages", "#Size"], rows);
}

function topicStats(t, rate) {
  const sum = (f) => t.partitions.reduce((s, p) => (s === null || f(p) === null ? null : s + f(p)), 0);
  const urp = t.partitions.filter((p) => p.isr.length < p.replicas.length).length;
  return h`<div class="stats">${stat("Partitions", t.partitions.length)}
    ${stat("Replication factor", t.partitions[0]?.replicas.length ?? "–")}
    ${stat("Messages", fmtNum(sum((p) => (p.high_watermark === null || p.log_start_offset === null ? null : p.high_watermark - p.log_start_offset))))}
    ${stat("Size", fmtBytes(sum((p) => p.size_bytes)))}
    ${stat("Messages in/s", h`<span data-testid="topic-rate">${fmtRate(rate)}</span>`)}
    ${stat("Under-replicated", urp, urp ? "warn" : "")}</div>`;
}

async function topicView(ctx) {
  const [name, tab] = ctx.params;
  const t = await api("GET", `/api/v1/topics/${enc(name)}`);
  if (!paint(ctx, h`${topicHead(name, tab, t.internal)}<div id="topic-body"></div>`)) return;
  const del = $("#topic-delete");
  if (del) del.onclick = () => deleteTopic(name, () => { location.hash = "#/topics"; });
  const body = $("#topic-body");
  if (tab === "messages") return messagesTab(ctx, t, body);
  if (tab === "produce") return produceTab(ctx, t, body);
  if (tab === "configs") return configsTab(ctx, t, body);
  return topicOverviewTab(ctx, t, body);
}

function topicOverviewTab(ctx, t, body) {
  const rate = rateTracker();
  const draw = (topic) => {
    $("#topic-stats").innerHTML = topicStats(topic, rate(topic.messages_in_total));
    $("#topic-partitions").innerHTML = partitionsTable(topic);
  };
  const overrides = Object.entries(t.configs || {}).map(([k, v]) => h`<code class="hdr"><b>${k}</b>${v}</code>`);
  body.innerHTML = h`<div id="topic-stats"></div>
    <section class="card"><h2>Partitions</h2><div id="topic-partitions"></div></section>
    <section class="card"><h2>Config overrides</h2>${overrides.length ? overrides : h`<span class="muted">none</span>`}
      · <a href="${topicHref(t.name, "configs")}">all configs</a></section>`;
  draw(t);
  refreshEvery(ctx, 2000, `/api/v1/topics/${enc(t.name)}`, draw);
}

/* ------------------------------------------------------------------ topic configs */

async function configsTab(ctx, t, body) {
  let configs = await api("GET", `/api/v1/topics/${enc(t.name)}/configs`);
  if (!ctx.alive()) return;
  body.innerHTML = h`<section class="card" id="topic-configs"><div class="card-head">
      <input class="config-filter search" placeholder="Filter configs" data-testid="config-filter">
      <label class="check"><input type="checkbox" class="config-only"> only overrides</label>
      <span class="spacer"></span>
      ${isAdmin() ? h`<form id="config-add" class="inline"><input id="cfg-name" placeholder="config name" required>
        <input id="cfg-value" placeholder="value" required><button class="btn primary" type="submit">Set</button></form>` : ""}
    </div><div class="config-list"></div></section>`;
  const root = $("#topic-configs");
  const draw = () => { $(".config-list", root).innerHTML = configsTable(filterConfigs(configs, root), { editable: isAdmin() }); };
  const patch = async (change) => {
    try {
      configs = await api("PATCH", `/api/v1/topics/${enc(t.name)}/configs`, change);
      toast("Configs updated", "ok");
      draw();
    } catch (e) { fail(e); }
  };
  $(".config-filter", root).oninput = draw;
  $(".config-only", root).onchange = draw;
  root.onclick = (e) => {
    const b = e.target.closest("button[data-edit], button[data-save], button[data-reset], button[data-cancel]");
    if (!b) return;
    if (b.dataset.edit) return editConfigRow(configs.find((c) => c.name === b.dataset.edit));
    if (b.dataset.cancel !== undefined) return draw();
    if (b.dataset.reset) return patch({ delete: [b.dataset.reset] });
    const value = $(`tr[data-config="${CSS.escape(b.dataset.save)}"] input`, root).value;
    patch({ set: { [b.dataset.save]: value } });
  };
  const add = $("#config-add");
  if (add) add.onsubmit = (e) => { e.preventDefault(); patch({ set: { [$("#cfg-name").value.trim()]: $("#cfg-value").value } }); };
  draw();
}

function editConfigRow(c) {
  const row = $(`tr[data-config="${CSS.escape(c.name)}"]`);
  const overridden = /^DYNAMIC_TOPIC/.test(c.source);
  $(".config-value", row).innerHTML = h`<input class="config-input" value="${c.sensitive ? "" : c.value ?? ""}" data-testid="config-input">`;
  row.lastElementChild.innerHTML = h`<button class="btn small primary" data-save="${c.name}" data-testid="config-save">Save</button>
    ${overridden ? h`<button class="btn small" data-reset="${c.name}" title="delete the override">Default</button>` : ""}
    <button class="btn small" data-cancel>Cancel</button>`;
  $("input", row).focus();
}

/* ------------------------------------------------------------------ message browser */

function b64bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hexDump(bytes, max = 4096) {
  const lines = [];
  for (let i = 0; i < Math.min(bytes.length, max); i += 16) {
    const row = [...bytes.slice(i, i + 16)];
    const hex = row.map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(47);
    const ascii = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex}  |${ascii}|`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join("\n");
}

/** A key, value or header value as {kind, text}: null, pretty JSON, text or a hex dump. */
function decodePayload(p) {
  if (p === null || p === undefined) return { kind: "null", text: "null" };
  if (p.utf8 !== undefined) {
    const s = p.utf8.trim();
    if (/^[[{]/.test(s)) {
      try { return { kind: "json", text: JSON.stringify(JSON.parse(s), null, 2) }; } catch (_) { /* plain text */ }
    }
    return { kind: "text", text: p.utf8 };
  }
  const bytes = b64bytes(p.base64 || "");
  return { kind: "binary", text: hexDump(bytes), size: bytes.length };
}

const inline = (p) => {
  const d = decodePayload(p);
  return d.kind === "null" ? h`<span class="muted">null</span>` : d.kind === "binary" ? h`<span class="muted">${d.size} bytes</span>` : d.text;
};

function messageCard(m, i) {
  const v = decodePayload(m.value);
  const headers = (m.headers || []).map((x) => h`<span class="hdr" data-testid="message-header"><b>${x.key}</b> ${inline(x.value)}</span>`);
  return h`<article class="msg" data-testid="message" data-partition="${m.partition}" data-offset="${m.offset}">
    <div class="msg-head">${badge(`partition ${m.partition}`)} <b>offset ${m.offset}</b>
      <span class="muted" title="${m.timestamp_type ?? ""}">${fmtTime(m.timestamp)}</span>
      <span class="msg-key">key <code data-testid="message-key">${inline(m.key)}</code></span>
      <span class="spacer"></span>${badge(v.kind)}
      <button class="btn small" data-copy="${i}" data-testid="copy">Copy</button></div>
    <pre class="value ${v.kind}" data-testid="message-value">${v.text}</pre>
    ${headers.length ? h`<div class="headers" data-testid="message-headers">${headers}</div>` : ""}</article>`;
}

function localInput(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms) - new Date(Number(ms)).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function browseForm(t, q) {
  const parts = t.partitions.map((p) => p.partition);
  const sel = (v, cur) => (String(v) === String(cur) ? "selected" : "");
  return h`<form id="browse-form" class="card filters" data-testid="browse-form">
    <label>Partition <select id="mb-partition"><option value="">All</option>
      ${parts.map((p) => h`<option value="${p}" ${sel(p, q.get("partition"))}>${p}</option>`)}</select></label>
    <label>Order <select id="mb-order"><option value="newest">Newest first</option>
      <option value="oldest" ${sel("oldest", q.get("order"))}>Oldest first</option></select></label>
    <label>From offset <input id="mb-offset" type="number" min="0" value="${q.get("offset") || ""}" placeholder="any"></label>
    <label>From time <input id="mb-time" type="datetime-local" step="1" value="${localInput(q.get("timestamp"))}"></label>
    <label>Limit <input id="mb-limit" type="number" min="1" max="1000" value="${q.get("limit") || "50"}"></label>
    <label class="grow">Search <input id="mb-q" type="search" value="${q.get("q") || ""}" placeholder="text in key, value or headers"></label>
    <button class="btn primary" id="mb-submit" type="submit">Browse</button></form>`;
}

/** The browse form as the hash's query (the datetime as epoch milliseconds). */
function browseQuery() {
  const time = $("#mb-time").value ? String(new Date($("#mb-time").value).getTime()) : "";
  const fields = [["partition", "#mb-partition"], ["order", "#mb-order"], ["offset", "#mb-offset"], ["limit", "#mb-limit"], ["q", "#mb-q"]];
  return new URLSearchParams([...fields.map(([k, sel]) => [k, $(sel).value]), ["timestamp", time]].filter(([, v]) => v !== "" && v !== "NaN"));
}

async function messagesTab(ctx, t, body) {
  const q = ctx.query;
  body.innerHTML = h`${browseForm(t, q)}<div id="mb-summary" class="muted"></div><div id="mb-list" data-testid="messages"></div>`;
  $("#browse-form").onsubmit = (e) => {
    e.preventDefault();
    const target = `${topicHref(t.name, "messages")}?${browseQuery()}`;
    if (location.hash === target) route(); else location.hash = target;
  };
  const params = new URLSearchParams({ order: "newest", limit: "50" });
  for (const k of ["partition", "offset", "timestamp", "order", "limit", "q"]) if (q.get(k)) params.set(k, q.get(k));
  const r = await api("GET", `/api/v1/topics/${enc(t.name)}/messages?${params}`);
  if (!ctx.alive()) return;
  $("#mb-summary").innerHTML = h`<span data-testid="messages-summary">${r.messages.length} message${r.messages.length === 1 ? "" : "s"}
    · scanned ${fmtNum(r.scanned)}${r.complete ? "" : h` · ${badge("scan stopped at its bound: narrow the search or move the start", "warn")}`}</span>`;
  $("#mb-list").innerHTML = r.messages.length ? h`${r.messages.map(messageCard)}` : h`<p class="muted card">No messages.</p>`;
  $("#mb-list").onclick = (e) => {
    const b = e.target.closest("[data-copy]");
    if (b) copyText(decodePayload(r.messages[Number(b.dataset.copy)].value).text);
  };
}

/* ------------------------------------------------------------------ produce */

function headerRow() {
  return h`<div class="hdr-row"><input class="hk" placeholder="header key" data-testid="header-key">
    <input class="hv" placeholder="header value" data-testid="header-value">
    <button class="btn small" type="button" data-remove-header title="remove">×</button></div>`;
}

function produceTab(ctx, t, body) {
  if (!isAdmin()) {
    body.innerHTML = h`<p class="card muted" data-testid="produce-readonly">Producing needs the admin role; you are a viewer.</p>`;
    return;
  }
  body.innerHTML = h`<form id="produce-form" class="card form-grid" data-testid="produce-form">
    <label>Partition <select id="pr-partition"><option value="">any (by key)</option>
      ${t.partitions.map((p) => h`<option value="${p.partition}">${p.partition}</option>`)}</select></label>
    <label>Key <input id="pr-key" placeholder="empty: no key"></label>
    <label class="wide">Value <textarea id="pr-value" rows="8" placeholder='{"id": 1}'></textarea></label>
    <div class="wide row"><label class="check"><input type="checkbox" id="pr-null"> null value (tombstone)</label>
      <button class="btn small" type="button" id="pr-format">Format JSON</button></div>
    <div class="wide"><div class="label">Headers</div><div id="pr-headers"></div>
      <button class="btn small" type="button" id="pr-add-header" data-testid="add-header">+ Header</button></div>
    <div class="actions wide"><button class="btn primary" id="pr-submit" type="submit">Produce</button></div></form>
    <div id="produce-result" data-testid="produce-result"></div>`;
  $("#pr-add-header").onclick = () => $("#pr-headers").insertAdjacentHTML("beforeend", headerRow());
  $("#pr-headers").onclick = (e) => { if (e.target.closest("[data-remove-header]")) e.target.closest(".hdr-row").remove(); };
  $("#pr-format").onclick = () => {
    try { $("#pr-value").value = JSON.stringify(JSON.parse($("#pr-value").value), null, 2); } catch (e) { toast(`Not JSON: ${e.message}`); }
  };
  $("#produce-form").onsubmit = (e) => { e.preventDefault(); produce(ctx, t); };
}

async function produce(ctx, t) {
  const body = {
    key: $("#pr-key").value === "" ? null : $("#pr-key").value,
    value: $("#pr-null").checked ? null : $("#pr-value").value,
    headers: $$("#pr-headers .hdr-row").map((r) => ({ key: $(".hk", r).value, value: $(".hv", r).value })).filter((x) => x.key !== ""),
  };
  if ($("#pr-partition").value !== "") body.partition = Number($("#pr-partition").value);
  try {
    const r = await api("POST", `/api/v1/topics/${enc(t.name)}/messages`, body);
    if (!ctx.alive()) return;
    const link = `${topicHref(t.name, "messages")}?partition=${r.partition}&offset=${r.offset}&order=oldest&limit=1`;
    $("#produce-result").innerHTML = h`<div class="card ok-box">Written to partition
      <b data-testid="produced-partition">${r.partition}</b> at offset <b data-testid="produced-offset">${r.offset}</b>.
      <a href="${link}" data-testid="produced-link">Show it</a></div>`;
  } catch (e) { fail(e); }
}

/* ------------------------------------------------------------------ consumer groups */

function stateBadge(state) {
  const kind = { Stable: "good", Empty: "", Dead: "bad", PreparingRebalance: "warn", CompletingRebalance: "warn" }[state] ?? "";
  return badge(state || "unknown", kind);
}

function groupRow(g) {
  const topics = new Set((g.partitions || []).map((p) => p.topic));
  return h`<tr data-testid="group-row" data-group="${g.group}"><td><a href="${groupHref(g.group)}">${g.group}</a></td>
    <td>${stateBadge(g.state)}</td><td>${g.type ?? "–"}</td><td>${g.protocol_type || "–"}</td>
    <td class="num">${fmtNum(Array.isArray(g.members) ? g.members.length : g.members)}</td><td class="num">${topics.size}</td>
    <td class="num">${num(g.lag, "lag")}</td></tr>`;
}

async function groupsView(ctx) {
  let groups = await api("GET", "/api/v1/groups");
  if (!paint(ctx, h`<div class="page-head"><h1>Consumer groups</h1></div>
    <section class="card"><div class="card-head"><input id="group-search" class="search" placeholder="Search groups" data-testid="group-search"></div>
      <div id="groups-list"></div></section>`)) return;
  const draw = () => {
    const q = $("#group-search").value.toLowerCase();
    const shown = groups.filter((g) => g.group.toLowerCase().includes(q));
    $("#groups-list").innerHTML = table("groups-table", ["Group", "State", "Type", "Protocol", "#Members", "#Topics", "#Lag"],
      shown.map(groupRow), "No group.");
  };
  $("#group-search").oninput = draw;
  draw();
  refreshEvery(ctx, 3000, "/api/v1/groups", (fresh) => { groups = fresh; draw(); });
}

/* ------------------------------------------------------------------ group page */

const lagHistory = new Map(); // group → [{t, lag}], kept across visits
const HISTORY = 150; // 5 minutes of 2-s polls

function groupStats(g) {
  return h`<div class="stats">${stat("State", stateBadge(g.state))}${stat("Members", g.members.length)}
    ${stat("Type", g.type ?? "–")}${stat("Protocol", g.protocol_type || "–")}${stat("Assignor", g.protocol || "–")}${stat("Total lag", num(g.lag, "group-lag"), g.lag ? "warn" : "")}</div>`;
}

function membersTable(g) {
  if (!g.members.length) return h`<p class="muted" data-testid="no-members">No active members.</p>`;
  const assignment = (m) => m.assignment.map((a) => h`<span class="hdr"><b>${a.topic}</b> ${a.partitions.join(", ")}</span>`);
  return table("members-table", ["Member", "Instance", "Client", "Host", "Assignment"], g.members.map((m) => h`<tr>
    <td><code>${m.member_id}</code></td><td>${m.group_instance_id ?? "–"}</td><td>${m.client_id}</td><td>${m.client_host}</td>
    <td>${assignment(m)}</td></tr>`));
}

function offsetsTable(g) {
  const rows = g.offsets.map((o) => h`<tr data-testid="offset-row" data-topic="${o.topic}" data-partition="${o.partition}">
    <td><a href="${topicHref(o.topic)}">${o.topic}</a></td><td>${o.partition}</td><td class="num">${fmtNum(o.committed_offset)}</td>
    <td class="num">${fmtNum(o.log_start_offset)}</td><td class="num">${fmtNum(o.end_offset)}</td>
    <td class="num">${num(o.lag, "partition-lag")}</td></tr>`);
  return table("offsets-table", ["Topic", "Partition", "#Committed", "#Log start", "#End offset", "#Lag"], rows, "No committed offsets.");
}

/** The chart's grid: a step of 1, 2, 2.5 or 5 × 10^k and the top, at most 5 steps up. */
function niceScale(max) {
  const raw = Math.max(max, 1) / 5, mag = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw && Number.isInteger(v)));
  return { step, top: step * Math.max(1, Math.ceil(max / step)) };
}

function drawLagChart(canvas, points) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, hgt = canvas.clientHeight;
  [canvas.width, canvas.height] = [w * dpr, hgt * dpr];
  const c = canvas.getContext("2d");
  c.scale(dpr, dpr);
  c.clearRect(0, 0, w, hgt);
  c.font = "11px system-ui, sans-serif";
  c.fillStyle = "#6b7280";
  if (points.length < 2) { c.fillText("Collecting lag every 2 s…", 12, hgt / 2); return; }
  const pad = { l: 56, r: 12, t: 12, b: 22 };
  const { step, top: max } = niceScale(Math.max(...points.map((p) => p.lag)));
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (w - pad.l - pad.r);
  const y = (v) => hgt - pad.b - (v / max) * (hgt - pad.t - pad.b);
  c.strokeStyle = "#e5e7eb";
  c.textAlign = "right";
  for (let v = 0; v <= max; v += step) {
    c.beginPath(); c.moveTo(pad.l, y(v)); c.lineTo(w - pad.r, y(v)); c.stroke();
    c.fillText(fmtNum(v), pad.l - 6, y(v) + 4);
  }
  c.textAlign = "left";
  c.fillText(new Date(t0).toLocaleTimeString(), pad.l, hgt - 6);
  c.textAlign = "right";
  c.fillText(new Date(t1).toLocaleTimeString(), w - pad.r, hgt - 6);
  c.beginPath();
  points.forEach((p) => c.lineTo(x(p.t), y(p.lag)));
  c.strokeStyle = "#5b5bd6";
  c.lineWidth = 2;
  c.stroke();
  c.lineTo(x(t1), y(0)); c.lineTo(x(t0), y(0)); c.closePath();
  c.fillStyle = "rgba(91, 91, 214, 0.12)";
  c.fill();
}

function recordLag(id, lag) {
  const pts = lagHistory.get(id) || [];
  pts.push({ t: Date.now(), lag: lag ?? 0 });
  while (pts.length > HISTORY) pts.shift();
  lagHistory.set(id, pts);
  return pts;
}

const STRATEGIES = {
  to_earliest: ["Earliest", ""], to_latest: ["Latest", ""], to_offset: ["Offset", "offset, e.g. 42"],
  to_datetime: ["Date and time", "2024-05-01T12:00:00.000"], by_duration: ["Duration back", "PT15M"],
  shift_by: ["Shift by", "-100 or 100"],
};

function resetPanel() {
  return h`<section class="card" id="reset-card"><h2>Reset offsets</h2>
    <p class="muted">Only an empty group (no active members) can be reset. Preview first, then apply.</p>
    <form id="reset-form" class="filters" data-testid="reset-form">
      <label>Topics <select id="rs-scope"><option value="all">all the group's topics</option><option value="some">these topics</option></select></label>
      <label class="grow">List <input id="rs-topics" placeholder="orders, payments:0,1" disabled></label>
      <label>Strategy <select id="rs-strategy">${Object.entries(STRATEGIES).map(([k, [l]]) => h`<option value="${k}">${l}</option>`)}</select></label>
      <label>Value <input id="rs-value" disabled></label>
      <button class="btn" id="reset-preview" type="submit" data-testid="reset-preview">Preview</button>
      <button class="btn danger" id="reset-apply" type="button" data-testid="reset-apply" disabled>Apply</button></form>
    <div id="reset-plan"></div></section>`;
}

function resetRequest(dryRun) {
  const strategy = $("#rs-strategy").value;
  const all = $("#rs-scope").value === "all";
  const topics = all ? [] : $("#rs-topics").value.split(/[\s;]+|,(?=\s*[^\d\s])/).map((s) => s.trim()).filter(Boolean);
  const body = { all_topics: all, topics, strategy, dry_run: dryRun };
  if (STRATEGIES[strategy][1]) body.value = $("#rs-value").value.trim();
  return body;
}

function planTable(r) {
  if (!r.plan.length) return h`<p class="muted" data-testid="reset-plan">Nothing to reset.</p>`;
  const rows = r.plan.map((p) => h`<tr><td>${p.topic}</td><td>${p.partition}</td><td class="num">${fmtNum(p.current_offset)}</td>
    <td class="num">${fmtNum(p.new_offset)}</td><td class="num">${p.current_offset === null ? "–" : fmtNum(p.new_offset - p.current_offset)}</td></tr>`);
  return h`<table class="grid" data-testid="reset-plan" data-executed="${String(r.executed)}"><caption>${r.executed ? "Applied" : "Preview: nothing changed yet"}</caption>
    <thead><tr><th>Topic</th><th>Partition</th><th class="num">Current</th><th class="num">New</th><th class="num">Change</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
}

function bindReset(id, refresh) {
  const form = $("#reset-form"), apply = $("#reset-apply");
  let previewed = null;
  const sync = () => {
    const s = STRATEGIES[$("#rs-strategy").value];
    $("#rs-value").disabled = !s[1];
    $("#rs-value").placeholder = s[1];
    $("#rs-topics").disabled = $("#rs-scope").value === "all";
    apply.disabled = previewed !== JSON.stringify(resetRequest(false));
  };
  form.oninput = form.onchange = sync;
  const run = async (dryRun) => {
    try {
      const r = await api("POST", `/api/v1/groups/${enc(id)}/reset-offsets`, resetRequest(dryRun));
      $("#reset-plan").innerHTML = planTable(r);
      previewed = dryRun ? JSON.stringify(resetRequest(false)) : null;
      if (!dryRun) { toast(`Offsets of ${r.plan.length} partition(s) reset`, "ok"); refresh(); }
      sync();
    } catch (e) { fail(e); }
  };
  form.onsubmit = (e) => { e.preventDefault(); run(true); };
  apply.onclick = () => run(false);
  sync();
}

async function groupView(ctx) {
  const [id] = ctx.params;
  const g = await api("GET", `/api/v1/groups/${enc(id)}`);
  const del = isAdmin() ? h`<button class="btn danger" id="group-delete" data-testid="delete-group">Delete group</button>` : "";
  if (!paint(ctx, h`<div class="page-head"><h1><a href="#/groups" class="crumb">Consumer groups</a> / <span data-testid="group-id">${id}</span></h1>
      <span class="spacer"></span>${del}</div>
    <div id="group-stats"></div>
    <section class="card"><h2>Lag</h2><canvas id="lag-chart" class="chart" data-testid="lag-chart"></canvas></section>
    <section class="card"><h2>Members</h2><div id="group-members"></div></section>
    <section class="card"><h2>Offsets and lag per partition</h2><div id="group-offsets"></div></section>
    ${isAdmin() ? resetPanel() : ""}`)) return;
  const draw = (group) => {
    $("#group-stats").innerHTML = groupStats(group);
    $("#group-members").innerHTML = membersTable(group);
    $("#group-offsets").innerHTML = offsetsTable(group);
    drawLagChart($("#lag-chart"), recordLag(id, group.lag));
  };
  const refresh = async () => {
    try {
      const fresh = await api("GET", `/api/v1/groups/${enc(id)}`);
      if (ctx.alive()) draw(fresh);
    } catch (e) {
      if (e.status !== 404) throw e;
      stopTimers();
      $("#group-stats").innerHTML = h`<p class="error">${e.message}</p>`;
    }
  };
  draw(g);
  if (isAdmin()) {
    bindReset(id, () => refresh().catch(fail));
    $("#group-delete").onclick = async () => {
      if (!(await confirmBox(h`Delete group <b>${id}</b> and its committed offsets?`))) return;
      try {
        await api("DELETE", `/api/v1/groups/${enc(id)}`);
        toast(`Group ${id} deleted`, "ok");
        location.hash = "#/groups";
      } catch (e) { fail(e); }
    };
  }
  every(2000, refresh);
}

/* ------------------------------------------------------------------ boot */

async function boot() {
  $("#login-form").onsubmit = login;
  $("#logout").onclick = logout;
  window.addEventListener("hashchange", route);
  try {
    await enter(await api("GET", "/api/v1/session"));
  } catch (e) {
    showLogin(e.status === 401 ? "" : e.message);
  }
}

boot();
