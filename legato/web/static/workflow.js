// A workflow's page: the start form generated from its declared inputs (types checked here
// and by the server, whose field errors show next to their fields), its graph, its YAML.
import { api, el } from "./common.js";
import { dagSvg } from "./charts.js";

const data = JSON.parse(document.getElementById("page-data").textContent);
document.getElementById("dag").replaceChildren(dagSvg(data.graph, []));

// YAML highlighting: comments, keys and quoted strings, line by line (no library).
const code = document.querySelector("#source code");
if (code) {
  const lines = code.textContent.split("\n");
  code.replaceChildren(
    ...lines.flatMap((line, i) => {
      const parts = [];
      const comment = line.match(/^(\s*)(#.*)$/);
      const key = line.match(/^(\s*-?\s*)([\w.-]+)(:)(.*)$/);
      if (comment) parts.push(comment[1], el("span", { class: "y-comment" }, comment[2]));
      else if (key) parts.push(key[1], el("span", { class: "y-key" }, key[2]), key[3], value(key[4]));
      else parts.push(value(line));
      return i < lines.length - 1 ? [...parts, "\n"] : parts;
    }),
  );
}

function value(text) {
  const quoted = text.match(/^(.*?)(["'].*["'])(.*)$/);
  if (!quoted) return text;
  return el("span", {}, quoted[1], el("span", { class: "y-string" }, quoted[2]), quoted[3]);
}

const form = document.getElementById("start-form");

function fieldError(name, message) {
  const slot = document.getElementById(`err-${name}`);
  const input = document.getElementById(`in-${name}`);
  if (slot) slot.textContent = message || "";
  if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
}

/** The value of one field as its declared type, or throws the message to show. */
function read(field) {
  const name = field.dataset.name;
  const type = field.dataset.type;
  const input = document.getElementById(`in-${name}`);
  if (field.dataset.control === "checkbox") return input.checked;
  const text = input.value.trim();
  if (text === "") {
    if (input.required) throw new Error("required");
    return undefined;
  }
  if (type === "integer") {
    if (!/^-?\d+$/.test(text)) throw new Error("expected a whole number");
    return Number(text);
  }
  if (type === "number") {
    const n = Number(text);
    if (!Number.isFinite(n)) throw new Error("expected a number");
    return n;
  }
  if (type === "string") return input.value;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("expected JSON");
  }
  if (type === "array" && !Array.isArray(parsed)) throw new Error("expected a JSON array");
  if (type === "object" && (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)))
    throw new Error("expected a JSON object");
  return parsed;
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const result = document.getElementById("start-result");
  result.textContent = "";
  const inputs = {};
  let bad = null;
  for (const field of form.querySelectorAll(".field[data-name]")) {
    try {
      const v = read(field);
      if (v !== undefined) inputs[field.dataset.name] = v;
      fieldError(field.dataset.name, "");
    } catch (err) {
      fieldError(field.dataset.name, err.message);
      bad ||= document.getElementById(`in-${field.dataset.name}`);
    }
  }
  const labels = {};
  fieldError("-labels", "");
  for (const line of document.getElementById("in--labels").value.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) {
      fieldError("-labels", `"${line}" is not key=value`);
      bad ||= document.getElementById("in--labels");
      continue;
    }
    labels[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  if (bad) {
    bad.focus();
    return;
  }
  try {
    const run = await api("/api/v1/runs", {
      method: "POST",
      body: { workflow: form.dataset.workflow, version: Number(form.dataset.version), inputs, labels },
    });
    result.replaceChildren("Started ", el("a", { href: `/ui/runs/${run.id}`, id: "started-run" }, `run ${run.id}`), ".");
  } catch (err) {
    let placed = false;
    for (const e of err.body?.errors || []) {
      const name = String(e.path || "").replace(/^inputs\./, "");
      if (document.getElementById(`err-${name}`)) {
        fieldError(name, e.message);
        placed = true;
      }
    }
    result.textContent = placed ? "The server refused some fields." : err.message;
  }
});
