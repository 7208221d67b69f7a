// The operations page: signs in once (the token becomes an HttpOnly cookie), then follows the
// board over server-sent events. Every value is written as text, never as HTML: reason codes and
// places come from a shared stream.
"use strict";

const $ = (id) => document.getElementById(id);
const ALERT_STATUSES = new Set(["refused_at_border", "transit_incident", "on_hold", "no_show"]);
let source = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = c instanceof Node ? c : el("td", c);
    tr.appendChild(td instanceof HTMLTableCellElement ? td : wrap(td));
  }
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  return tr;
}

function wrap(node) { const td = document.createElement("td"); td.appendChild(node); return td; }
function num(n, cls) { return el("td", n === null || n === undefined ? "–" : n, "n" + (cls ? " " + cls : "")); }
function fill(tableId, rows, empty) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const cols = $(tableId).querySelectorAll("thead th").length;
    const td = el("td", empty, "muted"); td.colSpan = cols;
    body.appendChild(row([td]));
  }
}
function hhmm(iso) { return iso ? iso.slice(11, 19) : ""; }

function render(b) {
  $("totals").textContent = `${b.totals.cases} cases, ${b.totals.people} people`;
  $("updated").textContent = "updated " + hhmm(b.generated_at) + " UTC";

  $("funnel").replaceChildren(...b.funnel.map((s) => {
    const d = el("div", null, "stage" + (s.cases ? "" : " zero") + (s.cases && ALERT_STATUSES.has(s.status) ? " alert" : ""));
    d.dataset.status = s.status;
    const c = el("div", s.cases, "count"); c.dataset.testid = "funnel-" + s.status;
    d.append(c, el("div", s.status.replaceAll("_", " "), "label"), el("div", `${s.people} ${s.people === 1 ? "person" : "people"}`, "label"));
    return d;
  }));

  fill("crossings", b.crossings.map((c) => row([
    el("td", `${c.post} (${c.country}, ${c.direction})`),
    num(c.expected), num(c.at_post, c.at_post ? "warn" : ""), num(c.cleared, "good"),
    num(c.refused, c.refused ? "bad" : ""), num(c.held, c.held ? "bad" : ""),
  ], { "data-checkpoint": c.checkpoint_id })), "no crossings configured");


  fill("vehicles", b.vehicles.map((v) => row([
    el("td", v.vehicle), el("td", v.where + (v.stuck ? " (stuck)" : ""), v.stuck ? "warn" : ""),
    el("td", hhmm(v.since)), num(v.cases), num(v.people),
  ], { "data-vehicle": v.vehicle, class: v.stuck ? "stuck" : "" })), "no vehicle on the road");

  const after = b.stuck_after_seconds < 120 ? `${b.stuck_after_seconds} s` : `${Math.round(b.stuck_after_seconds / 60)} min`;
  $("stuck-threshold").textContent = `(unchanged for more than ${after}; ${b.stuck_count} in all)`;
  fill("stuck", b.stuck.map((s) => row([
    el("td", s.case_id), el("td", s.status), el("td", [s.where, s.country].filter(Boolean).join(", ")), num(s.minutes),
  ], { "data-case": s.case_id, class: "stuck" })), "none");

  fill("dead-letters", b.dead_letters.map((d) => row([
    el("td", d.consumer), num(d.count, d.count ? "bad" : ""),
    el("td", Object.entries(d.reasons).map(([r, n]) => `${r} ×${n}`).join(", ")), el("td", hhmm(d.last_at)),
  ], { "data-consumer": d.consumer })), "no dead-letter topic readable (ACLs?)");

  fill("services", b.services.map((s) => {
    const consumers = Object.values(s.consumers || {});
    const sum = (k) => consumers.length ? consumers.reduce((a, c) => a + (c[k] || 0), 0) : null;
    const ready = s.ready === null ? "?" : s.ready ? "ready" : "NOT READY";
    const problems = Object.entries(s.checks || {}).filter(([, ok]) => !ok).map(([k]) => k);
    const readyCell = el("td", ready + (problems.length ? ` (${problems.join(", ")})` : "") + (s.problem ? ` – ${s.problem}` : ""), s.ready ? "good" : "bad");
    return row([el("td", s.name), readyCell, num(sum("applied")), num(sum("dead_lettered"), sum("dead_lettered") ? "bad" : ""), num(s.outbox_pending)],
      { "data-service": s.name });
  }), "no services configured");

  $("lag-problem").textContent = b.lag_problem || "";
  // One row per consumer group: its total lag, and the topics it is behind on.
  const groups = new Map();
  for (const g of b.lag) {
    const e = groups.get(g.group) || { lag: 0, behind: [] };
    e.lag += g.lag;
    if (g.lag > 0) e.behind.push(`${g.topic} (${g.lag})`);
    groups.set(g.group, e);
  }
  fill("lag", [...groups].map(([group, e]) => row([el("td", group), num(e.lag, e.lag > 0 ? "warn" : ""), el("td", e.behind.join(", ") || "–")],
    { "data-group": group })), "no consumer group has committed offsets yet");
}

function setLive(on, text) {
  const b = $("live");
  b.className = "badge " + (on ? "on" : "off");
  b.textContent = text;
}

function showSignIn(message) {
  if (source) { source.close(); source = null; }
  $("board").hidden = true; $("signout").hidden = true; $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  setLive(false, "signed out");
}

function follow() {
  $("signin").hidden = true; $("board").hidden = false; $("signout").hidden = false;
  source = new EventSource("/api/events");
  source.addEventListener("board", (e) => { render(JSON.parse(e.data)); setLive(true, "live"); });
  source.onerror = async () => {
    setLive(false, "reconnecting…");
    // EventSource does not say why; a 401 means the token expired: ask for a new one.
    const r = await fetch("/api/board", { credentials: "same-origin" });
    if (r.status === 401 || r.status === 403) showSignIn("Your session ended: sign in again.");
  };
}

async function start() {
  const r = await fetch("/api/board", { credentials: "same-origin" });
  if (r.ok) { render(await r.json()); follow(); } else { showSignIn(); }
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value.trim() }),
  });
  $("token").value = "";
  if (r.ok) { start(); return; }
  let detail = `refused (${r.status})`;
  try { const body = await r.json(); detail = body.detail && typeof body.detail === "string" ? body.detail : detail; } catch (_) { /* not JSON */ }
  $("signin-error").textContent = detail;
});

$("signout").addEventListener("click", async () => {
  await fetch("/session", { method: "DELETE", credentials: "same-origin" });
  showSignIn();
});

$("lookup-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = $("lookup-id").value.trim();
  $("lookup-error").textContent = "";
  const r = await fetch("/api/cases/" + encodeURIComponent(id), { credentials: "same-origin" });
  if (!r.ok) { $("timeline").hidden = true; $("lookup-error").textContent = r.status === 404 ? "no such case on the status stream" : `refused (${r.status})`; return; }
  const t = await r.json();
  $("timeline").hidden = false;
  fill("timeline", t.steps.map((s, i) => row([
    num(i + 1), el("td", s.status), el("td", [s.place, s.country].filter(Boolean).join(", ")),
    el("td", s.at.replace("T", " ").slice(0, 19)), el("td", s.reason || ""),
  ], { "data-status": s.status })), "no status yet");
});

start();
