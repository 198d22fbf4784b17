// Inline SVG charts: the steps' timeline (Gantt) against their usual duration, the workflow's
// graph coloured by step state, and a step's progress history.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const statusClass = (status) => `s-${String(status || "pending").toLowerCase()}`;

/** Bars from each top-level step's start to its end (or now), over its p50–p95 band. */
export function timelineSvg(run, now) {
  const steps = (run.steps || []).filter((s) => s.started_at);
  const rowH = 22;
  const labelW = 140;
  const width = 720;
  const height = Math.max(1, steps.length) * rowH + 24;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `Timeline of ${steps.length} started steps`,
    class: "timeline",
  });
  if (!steps.length) {
    root.append(svg("text", { x: 8, y: 16, class: "axis" }, "No step has started yet."));
    return root;
  }
  const t0 = Math.min(...steps.map((s) => Date.parse(s.started_at)));
  const ends = steps.map((s) => {
    const start = Date.parse(s.started_at);
    const end = s.finished_at ? Date.parse(s.finished_at) : now.getTime();
    const band = s.baseline ? start + s.baseline.p95_ms : end;
    return Math.max(end, band);
  });
  const t1 = Math.max(t0 + 1000, ...ends);
  const x = (t) => labelW + ((t - t0) / (t1 - t0)) * (width - labelW - 8);
  steps.forEach((s, i) => {
    const y = i * rowH + 4;
    const start = Date.parse(s.started_at);
    const end = s.finished_at ? Date.parse(s.finished_at) : now.getTime();
    const group = svg("g", { class: statusClass(s.status) });
    group.append(svg("title", {}, `${s.key}: ${s.status}, ${Math.round((end - start) / 100) / 10}s`));
    group.append(svg("text", { x: 4, y: y + 14, class: "label" }, s.key.slice(0, 18)));
    if (s.baseline) {
      group.append(svg("rect", {
        x: x(start + s.baseline.p50_ms),
        y: y + 2,
        width: Math.max(1, x(start + s.baseline.p95_ms) - x(start + s.baseline.p50_ms)),
        height: rowH - 8,
        class: "band",
      }));
    }
    group.append(svg("rect", { x: x(start), y: y + 5, width: Math.max(2, x(end) - x(start)), height: rowH - 14, class: "bar" }));
    root.append(group);
  });
  root.append(svg("text", { x: labelW, y: height - 4, class: "axis" }, "0s"));
  root.append(svg("text", { x: width - 8, y: height - 4, class: "axis", "text-anchor": "end" }, `${Math.round((t1 - t0) / 1000)}s`));
  return root;
}

/** The workflow's steps in layers by their needs, each node coloured by its step's state. */
export function dagSvg(graph, steps) {
  const status = new Map(steps.map((s) => [s.key, s.status]));
  const layer = new Map();
  const depth = (key, seen = new Set()) => {
    if (layer.has(key)) return layer.get(key);
    if (seen.has(key)) return 0;
    seen.add(key);
    const node = graph.find((n) => n.key === key);
    const d = node && node.needs.length ? 1 + Math.max(...node.needs.map((n) => depth(n, seen))) : 0;
    layer.set(key, d);
    return d;
  };
  graph.forEach((n) => depth(n.key));
  const columns = [];
  for (const n of graph) (columns[layer.get(n.key)] ||= []).push(n);
  const nodeW = 130;
  const nodeH = 30;
  const gapX = 50;
  const gapY = 14;
  const pos = new Map();
  columns.forEach((col, c) => col.forEach((n, r) => pos.set(n.key, { x: 8 + c * (nodeW + gapX), y: 8 + r * (nodeH + gapY) })));
  const width = Math.max(200, columns.length * (nodeW + gapX));
  const height = Math.max(...columns.map((col) => col.length), 1) * (nodeH + gapY) + 8;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": graphLabel(graph, status),
    class: "dag",
  });
  for (const n of graph) {
    for (const need of n.needs) {
      const a = pos.get(need);
      const b = pos.get(n.key);
      if (!a || !b) continue;
      const x1 = a.x + nodeW;
      const y1 = a.y + nodeH / 2;
      const x2 = b.x;
      const y2 = b.y + nodeH / 2;
      root.append(svg("path", { d: `M${x1},${y1} C${x1 + gapX / 2},${y1} ${x2 - gapX / 2},${y2} ${x2},${y2}`, class: "edge" }));
    }
  }
  for (const n of graph) {
    const p = pos.get(n.key);
    const s = status.get(n.key);
    const group = svg("g", { class: `node ${statusClass(s)}`, "data-key": n.key, "data-status": s || "" });
    group.append(svg("title", {}, `${n.name}: ${s || "not started"}`));
    group.append(svg("rect", { x: p.x, y: p.y, width: nodeW, height: nodeH, rx: 6 }));
    group.append(svg("text", { x: p.x + 8, y: p.y + 19 }, n.key.slice(0, 16)));
    root.append(group);
  }
  return root;
}

/** The graph in words: each step and its state (the first 30, then how many more). */
function graphLabel(graph, status) {
  const words = graph
    .slice(0, 30)
    .map((n) => `${n.key} ${(status.get(n.key) || "not started").toLowerCase()}`);
  const more = graph.length > 30 ? `, and ${graph.length - 30} more` : "";
  return `Graph of ${graph.length} steps: ${words.join(", ")}${more}`;
}

/** A small line of a step's reported progress over time. */
export function sparkline(points, label) {
  const w = 120;
  const h = 24;
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img", "aria-label": label, class: "spark" });
  if (points.length < 2) {
    root.append(svg("text", { x: 2, y: 16, class: "axis" }, points.length ? `${Math.round(points[0].fraction * 100)}%` : "no history"));
    return root;
  }
  const t0 = Date.parse(points[0].time);
  const t1 = Math.max(t0 + 1, Date.parse(points[points.length - 1].time));
  const d = points
    .map((p, i) => `${i ? "L" : "M"}${((Date.parse(p.time) - t0) / (t1 - t0)) * (w - 4) + 2},${h - 2 - p.fraction * (h - 4)}`)
    .join(" ");
  root.append(svg("path", { d, class: "spark-line" }));
  return root;
}
