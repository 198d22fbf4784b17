// Helpers every page uses: calling the API with the session, building DOM, showing times.

export const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** Calls the API with the session cookie (and its CSRF token on anything but a read). */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Problem(res.status, data);
  return data;
}

/** A DOM element: el("a", {href: "/"}, "text", child…). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** A time in the browser's zone, with the exact UTC time on hover. */
export function timeEl(iso, { clock = false } = {}) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return el(
    "time",
    { datetime: iso, title: `${date.toISOString().replace(".000Z", "Z")} (UTC)` },
    (clock ? clockFormat : localFormat).format(date),
  );
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export const sinceMs = (iso, untilIso) =>
  iso ? (untilIso ? new Date(untilIso) : new Date()) - new Date(iso) : null;

export function badge(status) {
  return el("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

export function bar(percent, label) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  return el(
    "span",
    { class: "bar" },
    el("progress", { max: "100", value: String(value), "aria-label": label }, `${value}%`),
    el("span", { class: "percent" }, `${value.toFixed(value % 1 ? 1 : 0)}%`),
  );
}

/** A step's waiting reason in words. */
export function waitingWords(reason) {
  if (!reason) return "";
  const clock = (iso) => clockFormat.format(new Date(iso));
  switch (reason.reason) {
    case "approval":
      return "waiting for approval";
    case "upstream":
      return reason.on?.length ? `waiting for steps ${reason.on.join(", ")}` : "about to start";
    case "backoff_until":
      return `backing off until ${clock(reason.until)}`;
    case "sleep_until":
      return `sleeping until ${clock(reason.until)}`;
    case "no_worker":
      return "waiting for a worker (none is alive)";
    case "concurrency_limit":
      return {
        workers: "waiting for a free worker slot",
        namespace: "waiting: the namespace is at its concurrent-run limit",
        max_parallel: "waiting: the foreach is at its max_parallel",
      }[reason.on] || "waiting for a free slot";
    case "child_run":
      return `waiting for sub-workflow run ${reason.run_id}`;
    default:
      return `waiting (${reason.reason})`;
  }
}

export function timeLeftWords(t) {
  if (!t || t.seconds === null || t.seconds === undefined) return null;
  const main = duration(t.seconds * 1000);
  const range =
    t.low_seconds !== null && t.high_seconds !== null
      ? ` (${duration(t.low_seconds * 1000)} – ${duration(t.high_seconds * 1000)})`
      : "";
  return `${main}${range}`;
}

export function toast(message) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("shown"), 4000);
}

// One-click copy of ids and values.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    toast("Copied");
  } catch {
    toast("Copy is not allowed here; select the text instead");
  }
});

// The sign-in form shows the fields of the chosen method.
const methods = document.querySelectorAll('input[name="method"]');
if (methods.length) {
  const show = () => {
    const chosen = document.querySelector('input[name="method"]:checked')?.value;
    document.querySelector(".by-key").hidden = chosen === "password";
    document.querySelector(".by-password").hidden = chosen !== "password";
  };
  methods.forEach((m) => m.addEventListener("change", show));
  show();
}

// Times the server wrote into the page: shown in the browser's zone, UTC on hover.
for (const node of document.querySelectorAll("time[data-local]")) {
  node.replaceWith(timeEl(node.getAttribute("datetime")));
}
