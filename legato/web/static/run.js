// A run's page, live: the head, the step tree (levels loaded on demand), the timeline, the
// graph and the tabs follow the API's Server-Sent Events (…/watch and logs?follow=true).
import {
  api,
  badge,
  bar,
  duration,
  el,
  sinceMs,
  timeEl,
  timeLeftWords,
  toast,
  waitingWords,
} from "./common.js";
import { dagSvg, sparkline, timelineSvg } from "./charts.js";

const data = JSON.parse(document.getElementById("page-data").textContent);
const canAct = data.can_act;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT", "SKIPPED"]);
const MAX_LOG_LINES = 5000;
let run = data.run;
let deleted = false;
const expanded = new Map(); // path -> {runId, parent (step id) | null, steps}
const histories = new Map(); // "runId:key" -> points, for the steps whose history is open

const $ = (id) => document.getElementById(id);

// -- head -------------------------------------------------------------------------------------

function renderHead() {
  const status = $("run-status");
  status.textContent = run.status;
  status.className = `badge status-${run.status.toLowerCase()}`;
  $("run-message").textContent = run.status_message || "";
  $("run-progress").value = run.progress.percent;
  $("run-progress").textContent = `${run.progress.percent}%`;
  $("run-percent").textContent = `${run.progress.percent}%`;
  $("run-steps-done").textContent =
    `${run.progress.finished_steps} of ${run.progress.total_steps} steps done`;
  const t = run.time_left;
  const left = $("run-time-left");
  if (TERMINAL.has(run.status)) left.textContent = "—";
  else if (!t || t.seconds === null) left.textContent = "unknown (waiting for a person or a worker)";
  else left.textContent = `${timeLeftWords(t)}, ${t.confidence} confidence`;
  const eta = $("run-eta");
  eta.replaceChildren(
    run.estimated_completion_time ? timeEl(run.estimated_completion_time) : "—",
  );
  if (run.estimated_completion_range) {
    eta.append(" (", timeEl(run.estimated_completion_range[0], { clock: true }), " – ",
      timeEl(run.estimated_completion_range[1], { clock: true }), ")");
  }
  $("run-started").replaceChildren(timeEl(run.started_at));
  $("run-duration").textContent = duration(
    run.duration_ms ?? (run.started_at ? sinceMs(run.started_at) : null),
  );
  $("run-labels").replaceChildren(
    ...Object.entries(run.labels || {}).map(([k, v]) => el("span", { class: "label" }, `${k}=${v}`)),
  );
  if (run.parent_run_id) {
    $("parent-fact").hidden = false;
    $("parent-link").href = `/ui/runs/${run.parent_run_id}`;
    $("parent-link").textContent = `run ${run.parent_run_id}`;
  }
  const counts = run.counts_by_status || {};
  $("run-counts").textContent = Object.entries(counts)
    .map(([s, n]) => `${n} ${s.toLowerCase()}`)
    .join(" · ");
  if (canAct) {
    const finished = TERMINAL.has(run.status);
    $("act-cancel").hidden = deleted || finished || run.status === "CANCELING";
    $("act-retry").hidden = deleted || !["FAILED", "TIMED_OUT"].includes(run.status);
    $("act-delete").hidden = deleted || !finished || run.parent_run_id !== null;
  }
  document.title = `Run ${run.id} · ${run.status} · Legato`;
}

// -- the step tree ----------------------------------------------------------------------------

function countsWords(counts) {
  if (!counts) return "";
  return Object.entries(counts)
    .map(([s, n]) => `${n} ${s.toLowerCase()}`)
    .join(", ");
}

function stepRow(runId, step, depth, path) {
  const hasItems = step.counts_by_status && Object.keys(step.counts_by_status).length > 0;
  const hasChild = step.child_run_id !== null && step.child_run_id !== undefined;
  const open = expanded.has(path);
  const name = el("span", { class: "step-name" }, step.name || step.key);
  const first = el("th", { scope: "row", style: `padding-left: ${0.5 + depth * 1.25}rem` });
  if (hasItems || hasChild) {
    first.append(
      el(
        "button",
        {
          type: "button",
          class: "expand",
          id: `expand-${path}`,
          "aria-expanded": open ? "true" : "false",
          "aria-label": `${open ? "Collapse" : "Expand"} ${step.key}`,
          onclick: () => toggle(path, runId, step),
        },
        open ? "▾" : "▸",
      ),
    );
  } else {
    first.append(el("span", { class: "expand-space", "aria-hidden": "true" }));
  }
  first.append(name);
  if (step.name && step.name !== step.key) first.append(" ", el("code", { class: "muted" }, step.key));
  if (hasChild) {
    first.append(" ", el("a", { href: `/ui/runs/${step.child_run_id}` }, `run ${step.child_run_id}`));
  }
  const base = step.baseline;
  const took = step.duration_ms ?? (step.started_at && !step.finished_at ? sinceMs(step.started_at) : null);
  const statusCell = el("td", {}, badge(step.status));
  if (step.slower_than_usual) {
    statusCell.append(" ", el("span", { class: "slow", title: "longer than 95% of past runs" }, "slower than usual"));
  }
  const progressCell = el("td", {});
  if (step.progress !== null && step.progress !== undefined) {
    progressCell.append(bar(Math.round(step.progress * 1000) / 10, `${step.key} progress`));
    const hkey = `${runId}:${step.key}`;
    progressCell.append(
      el(
        "button",
        {
          type: "button",
          class: "small",
          id: `history-${path}`,
          "aria-expanded": histories.has(hkey) ? "true" : "false",
          onclick: () => toggleHistory(hkey, runId, step.key),
        },
        "history",
      ),
    );
    if (histories.has(hkey)) progressCell.append(sparkline(histories.get(hkey), `${step.key} progress history`));
  }
  const detail = el("td", { class: "detail" });
  const words = waitingWords(step.waiting_reason);
  if (words) detail.append(el("span", { class: "waiting" }, words));
  if (step.status_message) detail.append(el("span", {}, step.status_message));
  if (step.error) detail.append(el("span", { class: "error" }, `${step.error.code}: ${step.error.message}`));
  if (hasItems) detail.append(el("span", { class: "counts" }, countsWords(step.counts_by_status)));
  if (canAct && step.waiting_reason?.reason === "approval") {
    detail.append(
      el(
        "button",
        { type: "button", class: "primary", id: `approve-${path}`, onclick: () => decide(runId, step.key) },
        "Approve or reject…",
      ),
    );
  }
  return el(
    "tr",
    { id: `step-${path}`, dataset: { key: step.key, status: step.status, depth: String(depth) } },
    first,
    statusCell,
    el("td", {}, `${step.attempt} / ${step.max_attempts}`),
    el(
      "td",
      {},
      duration(took),
      base ? el("span", { class: "muted" }, ` (usual ${duration(base.p50_ms)}–${duration(base.p95_ms)})`) : "",
    ),
    progressCell,
    detail,
  );
}

const LEVEL_ROWS = 200; // rows shown per level until "show all" (a level may hold thousands)
const showAll = new Set(); // level prefixes shown in full

function levelRows(runId, steps, depth, prefix) {
  const out = [];
  const limited = !showAll.has(prefix) && steps.length > LEVEL_ROWS;
  for (const step of limited ? steps.slice(0, LEVEL_ROWS) : steps) {
    const path = `${prefix}${step.id}`;
    out.push(stepRow(runId, step, depth, path));
    const sub = expanded.get(path);
    if (sub?.steps) out.push(...levelRows(sub.runId, sub.steps, depth + 1, `${path}-`));
    else if (sub) out.push(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "loading…")));
  }
  if (limited) {
    const more = el(
      "button",
      {
        type: "button",
        id: `more-${prefix || "top"}`,
        onclick: () => {
          showAll.add(prefix);
          renderSteps();
        },
      },
      `Show all ${steps.length} steps`,
    );
    out.push(el("tr", {}, el("td", { colspan: "6", style: `padding-left: ${0.5 + depth * 1.25}rem` }, more)));
  }
  return out;
}

function renderSteps() {
  const focused = document.activeElement?.id;
  $("step-rows").replaceChildren(...levelRows(run.id, run.steps || [], 0, ""));
  if (focused && $(focused) && document.activeElement !== $(focused)) $(focused).focus();
}

async function loadLevel(path) {
  const sub = expanded.get(path);
  if (!sub) return;
  let steps;
  if (sub.parent === null) {
    steps = (await api(`/api/v1/runs/${sub.runId}`)).steps;
  } else {
    const answer = await api(`/api/v1/runs/${sub.runId}/steps?parent=${sub.parent}`);
    steps = Array.isArray(answer) ? answer : answer.steps;
  }
  if (expanded.get(path) === sub) sub.steps = steps;
}

async function toggle(path, runId, step) {
  if (expanded.has(path)) {
    for (const key of [...expanded.keys()]) if (key === path || key.startsWith(`${path}-`)) expanded.delete(key);
    renderSteps();
    return;
  }
  const child = step.child_run_id !== null && step.child_run_id !== undefined;
  expanded.set(path, child ? { runId: step.child_run_id, parent: null } : { runId, parent: step.id });
  renderSteps();
  await loadLevel(path).catch((err) => toast(err.message));
  renderSteps();
}

async function toggleHistory(hkey, runId, key) {
  if (histories.has(hkey)) histories.delete(hkey);
  else histories.set(hkey, (await api(`/api/v1/runs/${runId}/steps/${encodeURIComponent(key)}/progress`)).points);
  renderSteps();
}

async function refreshLevels() {
  await Promise.all([...expanded.keys()].map((p) => loadLevel(p).catch(() => null)));
  for (const hkey of histories.keys()) {
    const [runId, key] = [hkey.slice(0, hkey.indexOf(":")), hkey.slice(hkey.indexOf(":") + 1)];
    histories.set(hkey, (await api(`/api/v1/runs/${runId}/steps/${encodeURIComponent(key)}/progress`).catch(() => ({ points: [] }))).points);
  }
}

// -- charts -----------------------------------------------------------------------------------

let clock = null;
function renderCharts() {
  $("timeline").replaceChildren(timelineSvg(run, new Date()));
  $("dag").replaceChildren(dagSvg(data.graph, run.steps || []));
  if (!TERMINAL.has(run.status) && clock === null) {
    clock = setInterval(() => $("timeline").replaceChildren(timelineSvg(run, new Date())), 1000);
  } else if (TERMINAL.has(run.status) && clock !== null) {
    clearInterval(clock);
    clock = null;
  }
}

// -- tabs -------------------------------------------------------------------------------------

const tabs = [...document.querySelectorAll('[role="tab"]')];
let current = "logs";

function table(headers, rows) {
  if (!rows.length) return el("p", { class: "muted" }, "None.");
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
    ),
  );
}

const json = (v) => el("code", { class: "json" }, JSON.stringify(v));
const copy = (text, what) =>
  el("button", { type: "button", class: "copy small", dataset: { copy: String(text) }, "aria-label": `Copy ${what}` }, "copy");

const panels = {
  async values() {
    const { values } = await api(`/api/v1/runs/${run.id}/values`);
    return table(
      ["Id", "Scope", "Step", "Name", "Type", "Value"],
      values.map((v) => [
        el("span", {}, String(v.id), " ", copy(v.id, `value id ${v.id}`)),
        v.scope,
        v.step ?? "—",
        v.name,
        v.type,
        el("span", {}, json(v.value), " ", copy(JSON.stringify(v.value), `value of ${v.name}`)),
      ]),
    );
  },
  async events() {
    const { events } = await api(`/api/v1/runs/${run.id}/events`);
    return table(
      ["Time", "Type", "Step", "Status", "Message"],
      events.map((e) => [timeEl(e.time), e.type, e.step ?? "—", e.status ?? "", e.message ?? ""]),
    );
  },
  async errors() {
    const { errors } = await api(`/api/v1/runs/${run.id}/errors`);
    return table(
      ["Time", "Step", "Code", "Message"],
      errors.map((e) => [timeEl(e.time), e.step ?? "—", el("code", {}, e.code), e.message]),
    );
  },
  async resources() {
    const { resources } = await api(`/api/v1/runs/${run.id}/resources`);
    return table(
      ["Time", "Step", "Type", "Id", "Result", "Metadata"],
      resources.map((r) => [timeEl(r.time), r.step ?? "—", r.type,
        el("span", {}, r.resource_id, " ", copy(r.resource_id, `resource id ${r.resource_id}`)),
        r.action_result ?? "", json(r.metadata)]),
    );
  },
  async inputs() {
    return el(
      "div",
      {},
      el("h3", {}, "Inputs"),
      el("pre", {}, JSON.stringify(run.inputs ?? {}, null, 2)),
      el("h3", {}, "Outputs"),
      el("pre", {}, JSON.stringify(run.outputs ?? {}, null, 2)),
    );
  },
};

async function showPanel() {
  if (current === "logs" || !panels[current]) return;
  try {
    $(`panel-${current}`).replaceChildren(await panels[current]());
  } catch (err) {
    $(`panel-${current}`).replaceChildren(el("p", { class: "error" }, err.message));
  }
}

function select(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", on ? "true" : "false");
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  current = tab.id.slice(4);
  showPanel();
}

tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => select(tab));
  tab.addEventListener("keydown", (event) => {
    const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
    next.focus();
    select(next);
  });
});

// -- logs -------------------------------------------------------------------------------------

const logList = $("log-lines");
const stepFilter = $("log-step");
const levelFilter = $("log-level");
const knownSteps = new Set();
let lastSeq = 0;
let following = null;

function logVisible(li) {
  return (!stepFilter.value || li.dataset.step === stepFilter.value) &&
    (!levelFilter.value || li.dataset.level === levelFilter.value);
}

function addStepOption(key) {
  if (!key || knownSteps.has(key)) return;
  knownSteps.add(key);
  stepFilter.append(el("option", { value: key }, key));
}

function appendLog(line) {
  if (line.seq <= lastSeq) return;
  lastSeq = line.seq;
  addStepOption(line.step);
  const li = el(
    "li",
    { dataset: { step: line.step ?? "", level: line.level, seq: String(line.seq) }, class: `level-${line.level.toLowerCase()}` },
    timeEl(line.time, { clock: true }),
    " ",
    el("span", { class: "level" }, line.level),
    " ",
    el("span", { class: "step" }, line.step ?? "run"),
    " ",
    el("span", { class: "message" }, line.message),
  );
  li.hidden = !logVisible(li);
  logList.append(li);
  while (logList.childElementCount > MAX_LOG_LINES) logList.firstElementChild.remove();
}

for (const f of [stepFilter, levelFilter]) {
  f.addEventListener("change", () => {
    for (const li of logList.children) li.hidden = !logVisible(li);
  });
}

function followLogs() {
  following?.close();
  const source = new EventSource(`/api/v1/runs/${run.id}/logs?follow=true&after=${lastSeq}`);
  following = source;
  $("log-state").textContent = "following live";
  source.addEventListener("log", (event) => appendLog(JSON.parse(event.data)));
  source.addEventListener("end", () => {
    source.close();
    $("log-state").textContent = "the run has ended";
  });
  source.onerror = () => {
    if (deleted) source.close();
  };
}

// -- live -------------------------------------------------------------------------------------

let pending = Promise.resolve();
let chartsDue = false;
function update(next) {
  // an action's answer can be overtaken by the watch stream: an older view of the run (its
  // updated_at, ISO 8601 in UTC, compares as text) must not take the page back
  if (run && next.updated_at && run.updated_at && next.updated_at < run.updated_at) return;
  run = next;
  for (const s of run.steps || []) addStepOption(s.key);
  renderHead();
  renderSteps();
  // the charts after the table: the page is usable first, and a burst of changes draws once
  if (!chartsDue) {
    chartsDue = true;
    setTimeout(() => {
      chartsDue = false;
      renderCharts();
    }, 50);
  }
  pending = pending
    .then(refreshLevels)
    .then(() => {
      renderSteps();
      return showPanel();
    })
    .catch(() => null);
}

let watching = null;
function watch() {
  watching?.close();
  const source = new EventSource(`/api/v1/runs/${run.id}/watch`);
  watching = source;
  source.addEventListener("run", (event) => update(JSON.parse(event.data)));
  source.onerror = () => {
    if (deleted || TERMINAL.has(run.status)) source.close();
  };
}

// -- actions ----------------------------------------------------------------------------------

function confirmDialog(text, okLabel) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

function result(message, ok = true) {
  const box = $("action-result");
  box.textContent = message;
  box.className = ok ? "ok" : "error";
}

const ACTIONS = {
  cancel: { ask: (r) => `Cancel run ${r.id}? Running steps are stopped.`, ok: "Cancel run" },
  retry: { ask: (r) => `Run the failed steps of run ${r.id} again?`, ok: "Retry" },
  delete: { ask: (r) => `Delete run ${r.id} with its logs and values? This cannot be undone.`, ok: "Delete" },
};

async function act(action) {
  const spec = ACTIONS[action];
  if (!(await confirmDialog(spec.ask(run), spec.ok))) return;
  try {
    if (action === "delete") {
      await api(`/api/v1/runs/${run.id}`, { method: "DELETE" });
      deleted = true;
      renderHead();
      result(`Run ${run.id} was deleted.`);
      return;
    }
    const answer = await api(`/api/v1/runs/${run.id}/${action}`, { method: "POST" });
    update(answer);
    result(action === "cancel" ? `Run ${run.id} is being canceled.` : `Run ${run.id} is running its failed steps again.`);
    if (action === "retry") {
      watch();
      followLogs();
    }
  } catch (err) {
    result(`${err.message}${err.body?.code ? ` (${err.body.code})` : ""}`, false);
  }
}

async function decide(runId, key) {
  const dialog = $("approve");
  $("approve-step").textContent = key;
  $("approve-error").textContent = "";
  dialog.returnValue = "";
  dialog.showModal();
  const payloadField = $("approve-payload");
  payloadField.value = "{}";
  payloadField.focus();
  payloadField.select(); // typing replaces the empty payload
  const choice = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (choice !== "approve" && choice !== "reject") return;
  let payload;
  try {
    payload = JSON.parse($("approve-payload").value || "{}");
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw new Error();
  } catch {
    result("The payload must be a JSON object.", false);
    return;
  }
  try {
    await api(`/api/v1/runs/${runId}/steps/${encodeURIComponent(key)}/signal`, {
      method: "POST",
      body: { approved: choice === "approve", ...payload },
    });
    result(`Step ${key} was ${choice === "approve" ? "approved" : "rejected"}.`);
  } catch (err) {
    result(`${err.message}${err.body?.code ? ` (${err.body.code})` : ""}`, false);
  }
}

if (canAct) {
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
}

update(run);
followLogs();
watch();
