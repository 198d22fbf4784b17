// The runs list: rows rendered from the page's data, then kept live (changed runs update in
// place, new runs appear on top) by reading the list and the active runs every few seconds.
import { api, badge, bar, duration, el, sinceMs, timeEl, timeLeftWords } from "./common.js";

const data = JSON.parse(document.getElementById("page-data").textContent);
const rows = document.getElementById("run-rows");
const ACTIVE = new Set(["QUEUED", "RUNNING", "CANCELING"]);
const REFRESH_MS = 2000;
const runs = new Map(); // id -> run, as last shown

function labels(run) {
  return el(
    "ul",
    { class: "labels" },
    Object.entries(run.labels || {}).map(([k, v]) => el("li", {}, `${k}=${v}`)),
  );
}

function row(run) {
  const left = timeLeftWords(run.time_left);
  return el(
    "tr",
    { id: `run-${run.id}`, dataset: { status: run.status } },
    el("th", { scope: "row" }, el("a", { href: `/ui/runs/${run.id}` }, String(run.id))),
    el("td", {}, `${run.workflow} v${run.workflow_version}`),
    el("td", { class: "status" }, badge(run.status)),
    el("td", { class: "progress" }, bar(run.progress?.percent ?? 0, `Run ${run.id} progress`)),
    el("td", { class: "left" }, ACTIVE.has(run.status) ? left ?? "—" : "—"),
    el("td", {}, timeEl(run.started_at)),
    el("td", {}, duration(run.duration_ms ?? (run.started_at ? sinceMs(run.started_at) : null))),
    el("td", {}, labels(run)),
  );
}

function show(run) {
  const before = runs.get(run.id);
  const merged = { ...before, ...run };
  if (before && run.time_left === undefined && ACTIVE.has(run.status)) {
    merged.time_left = before.time_left;
  }
  runs.set(run.id, merged);
  const fresh = row(merged);
  const old = document.getElementById(`run-${run.id}`);
  if (old) old.replaceWith(fresh);
  return fresh;
}

function render(list) {
  rows.replaceChildren(...list.map((r) => show(r)));
  document.getElementById("no-runs").hidden = list.length > 0;
}

function query() {
  const params = new URLSearchParams();
  const f = data.filters;
  for (const s of f.status) params.append("status", s);
  if (f.workflow) params.set("workflow", f.workflow);
  for (const l of f.label) params.append("label", l);
  if (f.created_after) params.set("created_after", new Date(f.created_after).toISOString());
  if (f.created_before) params.set("created_before", new Date(f.created_before).toISOString());
  params.set("page_size", String(data.page_size));
  return params;
}

async function refreshList() {
  const page = await api(`/api/v1/runs?${query()}`);
  const shownIds = new Set(page.runs.map((r) => r.id));
  // new runs on top, in order; changed ones in place
  let anchor = null;
  for (const run of page.runs) {
    const node = document.getElementById(`run-${run.id}`);
    if (node) {
      anchor = show(run);
    } else {
      const fresh = show(run);
      if (anchor) anchor.after(fresh);
      else rows.prepend(fresh);
      anchor = fresh;
    }
  }
  // runs that dropped out of the first page (deleted, or pushed past it)
  for (const node of [...rows.children]) {
    const id = Number(node.id.slice(4));
    if (!shownIds.has(id)) {
      node.remove();
      runs.delete(id);
    }
  }
  document.getElementById("no-runs").hidden = rows.children.length > 0;
}

async function refreshActive() {
  const ids = [...runs.values()].filter((r) => ACTIVE.has(r.status)).map((r) => r.id);
  if (!ids.length) return;
  const answer = await api(`/api/v1/runs:batchGet?ids=${ids.slice(0, 100).join(",")}`);
  for (const run of answer.runs) {
    delete run.steps;
    show(run);
  }
}

async function refreshCounts() {
  const counts = await api("/ui/counts");
  for (const [status, n] of Object.entries(counts)) {
    const slot = document.querySelector(`[data-count="${status}"]`);
    if (slot) slot.textContent = n > 10000 ? "10000+" : String(n);
  }
}

async function tick() {
  try {
    if (data.first_page) await refreshList();
    await refreshActive();
    await refreshCounts();
  } catch (err) {
    if (err.status === 401) location.assign(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  } finally {
    setTimeout(tick, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
  }
}

render(data.page.runs);
tick();
