// GameLens web UI: plain JavaScript, no build step, nothing from a CDN.
// The page's state lives in its URL (?view=explore&name=bowl&sort=-positive...), so views can be
// bookmarked and shared and the back button works; every view shows the API call behind it.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

const CONTROL = new Set(["view", "sort", "offset", "limit", "fields", "group_by", "metrics", "cursor", "format"]);
const PAGE = 50;
let schema = null;
let lastApiUrl = "";

// --- the key and the API --------------------------------------------------------------------------

const key = () => localStorage.getItem("gamelens.key") || "";

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (key()) headers["Authorization"] = `Bearer ${key()}`;
  lastApiUrl = new URL(path, location.origin).href;
  $("#api-url").textContent = (options.method || "GET") + " " + lastApiUrl;
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let err = {};
    try { err = (await response.json()).error || {}; } catch (e) { /* not JSON */ }
    const text = {
      401: "Your API key is missing or not valid: enter a key above.",
      403: "Your key is a reader key; this needs an admin key.",
      429: `Too many requests; retry in ${response.headers.get("Retry-After") || "a few"} s.`,
    }[response.status] || err.message || `HTTP ${response.status}`;
    showMessage(text, "error");
    const error = new Error(text);
    error.body = err;
    error.status = response.status;
    throw error;
  }
  return response;
}

function showMessage(text, kind = "info") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

// --- URL state ----------------------------------------------------------------------------------

const state = () => new URLSearchParams(location.search);
function go(params, replace = false) {
  const url = `${location.pathname}?${params.toString()}`;
  (replace ? history.replaceState : history.pushState).call(history, null, "", url);
  render();
}
function filterParams(params) {
  const out = new URLSearchParams();
  for (const [k, v] of params) if (!CONTROL.has(k)) out.append(k, v);
  return out;
}

// --- explore -----------------------------------------------------------------------------------

const OPS = [["exact", "="], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["ne", "≠"]];

function buildFilterForm() {
  const form = $("#filters");
  form.replaceChildren();
  for (const col of schema.columns) {
    if (col.type === "raw") continue;
    const id = `f-${col.name}`;
    let field;
    if (col.type === "string" || col.type === "list") {
      field = el("input", { type: "search", id, name: col.name, placeholder: col.type === "list" ? "any element contains" : "contains" });
      if (col.type === "list") {
        field.setAttribute("list", `${id}-values`);
        form.append(el("datalist", { id: `${id}-values` }));
      }
    } else if (col.type === "number" || col.type === "decimal") {
      const op = el("select", { id: `${id}-op`, "aria-label": `${col.name} operator` },
        ...OPS.map(([k, label]) => el("option", { value: k }, label)));
      field = el("span", { class: "pair" }, op,
        el("input", { type: "number", id, step: col.type === "decimal" ? "0.01" : "1", "data-op-for": col.name }));
    } else if (col.type === "date") {
      field = el("span", { class: "pair" },
        el("input", { type: "date", id: `${id}-from`, name: `${col.name}__gte`, "aria-label": `${col.name} from` }),
        "–",
        el("input", { type: "date", id: `${id}-to`, name: `${col.name}__lte`, "aria-label": `${col.name} to` }));
    } else if (col.type === "bool") {
      field = el("input", { type: "checkbox", id, name: col.name, value: "true" });
    }
    form.append(el("label", { for: id, title: col.doc }, col.name.replaceAll("_", " "), field));
  }
  form.append(el("span", { class: "actions" },
    el("button", { type: "submit", id: "apply" }, "Filter"),
    el("button", { type: "button", id: "clear", onclick: () => go(new URLSearchParams({ view: state().get("view") || "explore" })) }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = readFilterForm();
    const current = state();
    params.set("view", current.get("view") || "explore");
    for (const k of ["sort", "fields", "group_by", "metrics", "limit"]) if (current.get(k)) params.set(k, current.get(k));
    go(params);
  });
}

function readFilterForm() {
  const params = new URLSearchParams();
  for (const input of $("#filters").querySelectorAll("input")) {
    if (input.type === "checkbox") { if (input.checked) params.append(input.name, "true"); continue; }
    if (!input.value) continue;
    if (input.dataset.opFor) params.append(`${input.dataset.opFor}__${$(`#f-${input.dataset.opFor}-op`).value}`, input.value);
    else params.append(input.name, input.value);
  }
  return params;
}

function fillFilterForm(params) {
  for (const input of $("#filters").querySelectorAll("input")) {
    if (input.type === "checkbox") input.checked = params.get(input.name) === "true";
    else if (input.dataset.opFor) {
      const col = input.dataset.opFor;
      const op = OPS.map(([k]) => k).find((k) => params.has(`${col}__${k}`) || (k === "exact" && params.has(col)));
      $(`#f-${col}-op`).value = op || "exact";
      input.value = op ? (params.get(`${col}__${op}`) ?? params.get(col)) : "";
    } else input.value = params.get(input.name) || "";
  }
}

async function loadSuggestions() {
  const lists = schema.columns.filter((c) => c.type === "list").map((c) => c.name);
  const q = new URLSearchParams(lists.map((n) => ["facet", n]));
  q.set("limit", "1"); q.set("fields", "app_id"); q.set("facet_size", "100");
  try {
    const body = await (await fetch(`/api/v1/games?${q}`, { headers: key() ? { Authorization: `Bearer ${key()}` } : {} })).json();
    for (const name of lists) {
      const list = $(`#f-${name}-values`);
      if (list && body.facets) list.replaceChildren(...body.facets[name].map((f) => el("option", { value: f.value })));
    }
  } catch (e) { /* suggestions are a convenience */ }
}

function allFields() { return schema.columns.map((c) => c.name); }

function buildColumnChooser() {
  const box = $("#column-list");
  box.replaceChildren(...allFields().map((name) => el("label", {},
    el("input", { type: "checkbox", value: name, checked: "" }), name)));
  box.addEventListener("change", () => {
    const chosen = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    const params = state();
    if (chosen.length === allFields().length) params.delete("fields"); else params.set("fields", chosen.join(","));
    go(params);
  });
}

function cell(value) {
  if (Array.isArray(value)) return value.join(", ");
  if (value === null || value === undefined) return "";
  return String(value);
}

async function renderExplore(params) {
  fillFilterForm(params);
  const fields = params.get("fields") ? params.get("fields").split(",") : allFields();
  for (const box of $("#column-list").querySelectorAll("input")) box.checked = fields.includes(box.value);
  const q = new URLSearchParams(params);
  q.delete("view");
  if (!q.get("limit")) q.set("limit", PAGE);
  const body = await (await api(`/api/v1/games?${q}`)).json();
  const sort = params.get("sort") || "";
  const head = el("tr", {}, ...fields.map((f) => {
    const dir = sort === f ? " ▲" : sort === `-${f}` ? " ▼" : "";
    const sortable = schema.columns.find((c) => c.name === f)?.sortable;
    return el("th", sortable ? { class: "sortable", "data-field": f, onclick: () => sortBy(f) } : {}, f + dir);
  }));
  $("#results thead").replaceChildren(head);
  $("#results tbody").replaceChildren(...body.rows.map((row) => el("tr", {
    onclick: () => row.app_id !== undefined && showDetail(row.app_id), "data-app-id": row.app_id ?? "",
  }, ...fields.map((f) => el("td", { class: typeof row[f] === "number" ? "num" : "" }, cell(row[f]))))));
  const offset = body.offset, limit = body.limit;
  $("#total").textContent = `${body.total.toLocaleString()} games`;
  $("#total").dataset.total = body.total;
  $("#page").textContent = body.total ? `${offset + 1}–${offset + body.rows.length}` : "none";
  $("#prev").disabled = offset === 0;
  $("#next").disabled = !body.next;
  $("#prev").onclick = () => { const p = state(); p.set("offset", Math.max(0, offset - limit)); go(p); };
  $("#next").onclick = () => { const p = state(); p.set("offset", offset + limit); go(p); };
}

function sortBy(field) {
  const params = state();
  const current = params.get("sort");
  params.set("sort", current === field ? `-${field}` : field);
  params.delete("offset");
  go(params);
}

async function showDetail(appId) {
  const game = await (await api(`/api/v1/games/${appId}`)).json();
  $("#detail-title").textContent = game.name;
  $("#detail-body").replaceChildren(...Object.entries(game).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, cell(v))]));
  $("#detail").hidden = false;
}

async function exportAs(format) {
  const params = state();
  params.delete("view"); params.delete("offset"); params.delete("limit");
  params.set("format", format);
  const view = state().get("view") === "aggregate" ? "/api/v1/games/aggregate" : "/api/v1/games";
  const response = await api(`${view}?${params}`);
  const blob = await response.blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: `gamelens.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  const cut = response.headers.get("X-Truncated") === "true";
  showMessage(cut ? `Export cut at ${response.headers.get("X-Exported-Count")} of ${response.headers.get("X-Total-Count")} rows.` : "", cut ? "error" : "info");
}

// --- aggregate ---------------------------------------------------------------------------------

function buildAggregateForm() {
  const groups = [...schema.columns.filter((c) => c.groupable).map((c) => c.name), ...schema.buckets.map((b) => b.name)];
  $("#agg-group").replaceChildren(...groups.map((g) => el("option", { value: g }, g)));
  $("#agg-metric").replaceChildren(...schema.metrics.map((m) => el("option", { value: m.name }, m.name)));
  const columnsFor = () => {
    const metric = schema.metrics.find((m) => m.name === $("#agg-metric").value);
    $("#agg-column").replaceChildren(...metric.columns.map((c) => el("option", { value: c }, c)));
    $("#agg-column").disabled = metric.columns.length === 0;
  };
  $("#agg-metric").addEventListener("change", columnsFor);
  columnsFor();
  $("#agg-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = state();
    params.set("view", "aggregate");
    params.set("group_by", $("#agg-group").value);
    const metric = $("#agg-metric").value;
    params.set("metrics", metric === "count" ? "count" : `count,${metric}:${$("#agg-column").value}`);
    params.set("limit", $("#agg-limit").value || "20");
    go(params);
  });
}

async function renderAggregate(params) {
  const group = params.get("group_by") || "genres";
  const metrics = params.get("metrics") || "count";
  $("#agg-group").value = group;
  const [fn, col] = (metrics.split(",").find((m) => m !== "count") || "count").split(":");
  $("#agg-metric").value = fn;
  $("#agg-metric").dispatchEvent(new Event("change"));
  if (col) $("#agg-column").value = col;
  $("#agg-limit").value = params.get("limit") || "20";
  const q = filterParams(params);
  q.set("group_by", group); q.set("metrics", metrics); q.set("limit", params.get("limit") || "20");
  if (params.get("sort")) q.set("sort", params.get("sort"));
  const body = await (await api(`/api/v1/games/aggregate?${q}`)).json();
  const names = [...body.group_by, ...body.metrics];
  $("#agg-table thead").replaceChildren(el("tr", {}, ...names.map((n) => el("th", {}, n))));
  $("#agg-table tbody").replaceChildren(...body.rows.map((r) => el("tr", {}, ...names.map((n) => el("td", {}, cell(r[n]))))));
  const measure = body.metrics.find((m) => m !== "count") || "count";
  $("#agg-caption").textContent = `${measure} by ${group}`;
  barChart($("#agg-chart"), body.rows.map((r) => [cell(r[group]) || "(none)", r[measure] ?? 0]));
  const years = filterParams(params);
  years.set("group_by", "release_year"); years.set("sort", "release_year"); years.set("limit", "200");
  const byYear = await (await fetch(`/api/v1/games/aggregate?${years}`, { headers: { Authorization: `Bearer ${key()}` } })).json();
  barChart($("#year-chart"), byYear.rows.filter((r) => r.release_year !== null).map((r) => [String(r.release_year), r.count]), true);
}

function barChart(target, data, vertical = false) {
  target.replaceChildren();
  const max = Math.max(1, ...data.map(([, v]) => Number(v) || 0));
  if (vertical) {  // a time series: one column per year
    const w = Math.max(6, Math.floor(600 / Math.max(1, data.length)));
    target.setAttribute("viewBox", `0 0 ${w * data.length + 10} 170`);
    data.forEach(([label, value], i) => {
      const h = Math.round((Number(value) / max) * 140);
      const bar = svg("rect", { x: i * w + 5, y: 150 - h, width: w - 2, height: h, class: "bar" });
      bar.append(svg("title", {}, `${label}: ${value}`));
      target.append(bar);
      if (i % Math.ceil(data.length / 8) === 0) target.append(svg("text", { x: i * w + 5, y: 165, class: "tick" }, label));
    });
    return;
  }
  const rowH = 22;
  target.setAttribute("viewBox", `0 0 620 ${rowH * data.length + 4}`);
  data.forEach(([label, value], i) => {
    const width = Math.round((Number(value) / max) * 400);
    const bar = svg("rect", { x: 180, y: i * rowH + 3, width: Math.max(1, width), height: rowH - 6, class: "bar" });
    bar.append(svg("title", {}, `${label}: ${value}`));
    target.append(svg("text", { x: 175, y: i * rowH + 16, class: "label" }, label.slice(0, 28)), bar,
      svg("text", { x: 185 + width, y: i * rowH + 16, class: "value" }, String(value)));
  });
}

// --- upload ------------------------------------------------------------------------------------

async function submitUpload(event) {
  event.preventDefault();
  const url = $("#upload-url").value.trim();
  $("#upload-result").replaceChildren();
  let rec;
  try {
    rec = await (await api("/api/v1/uploads", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url }),
    })).json();
  } catch (e) {
    $("#upload-result").replaceChildren(el("p", { class: "error" }, e.message));
    return;
  }
  $("#upload-progress").hidden = false;
  while (["queued", "downloading", "loading"].includes(rec.state)) {
    showProgress(rec);
    await new Promise((r) => setTimeout(r, 250));
    rec = await (await api(`/api/v1/uploads/${rec.id}`)).json();
  }
  showProgress(rec);
  showResult(rec);
  renderHistory();
}

function showProgress(rec) {
  const bar = $("#upload-bar");
  if (rec.state === "downloading" && rec.bytes_expected) bar.value = Math.round(100 * rec.bytes_received / rec.bytes_expected) * 0.9;
  else if (rec.state === "loading") bar.value = 95;
  else if (rec.state === "succeeded") bar.value = 100;
  const mb = (rec.bytes_received / 1e6).toFixed(1);
  $("#upload-state").textContent = rec.state === "succeeded" ? `done: ${rec.rows_loaded.toLocaleString()} rows loaded`
    : rec.state === "loading" ? `loading rows (${mb} MB received)` : `${rec.state} ${mb} MB`;
  $("#upload-state").dataset.state = rec.state;
}

function showResult(rec) {
  const out = [];
  if (rec.state === "succeeded") out.push(el("p", { class: "ok" }, `Upload ${rec.id}: ${rec.rows_loaded.toLocaleString()} rows stored` + (rec.rows_rejected ? `, ${rec.rows_rejected} rejected` : "") + "."));
  else out.push(el("p", { class: "error" }, `Upload ${rec.id} ${rec.state}: ${rec.error?.message || ""}`));
  for (const w of rec.warnings || []) out.push(el("p", { class: "warning" }, `Warning: ${w}`));
  if ((rec.rejected_rows || []).length) {
    out.push(el("table", { class: "grid" }, el("tr", {}, el("th", {}, "row"), el("th", {}, "column"), el("th", {}, "value"), el("th", {}, "expected")),
      ...rec.rejected_rows.map((r) => el("tr", {}, el("td", {}, r.row), el("td", {}, r.column), el("td", {}, r.value), el("td", {}, r.expected)))));
  }
  $("#upload-result").replaceChildren(...out);
}

async function renderHistory() {
  const body = await (await api("/api/v1/uploads")).json();
  $("#upload-history tbody").replaceChildren(...body.uploads.map((u) => el("tr", {},
    el("td", {}, u.id), el("td", {}, u.state + (u.active ? " (active)" : "")), el("td", {}, u.rows_loaded),
    el("td", {}, (u.finished_at || u.created_at || "").replace("T", " ").slice(0, 19)), el("td", {}, u.created_by || ""),
    el("td", { class: "url" }, u.url),
    el("td", {}, u.stored && !u.active ? el("button", { type: "button", class: "activate", onclick: async () => {
      await api(`/api/v1/uploads/${u.id}/activate`, { method: "POST" });
      showMessage(`Upload ${u.id} is active again.`);
      renderHistory();
    } }, "Activate") : ""))));
}

// --- page ----------------------------------------------------------------------------------------

async function render() {
  const params = state();
  const view = params.get("view") || "explore";
  for (const name of ["explore", "aggregate", "upload"]) {
    $(`#view-${name}`).hidden = name !== view;
    $(`#nav-${name}`).classList.toggle("current", name === view);
  }
  $("#filters").hidden = false;
  $(view === "aggregate" ? "#view-aggregate" : "#view-explore").prepend($("#filters"));
  if (view === "aggregate") $("#view-explore").hidden = true;
  try {
    if (!schema) await init();
    if (view === "explore") await renderExplore(params);
    else if (view === "aggregate") await renderAggregate(params);
    else await renderHistory();
  } catch (e) {
    if (!e.status) showMessage(e.message, "error");
  }
}

async function init() {
  schema = await (await api("/api/v1/schema")).json();
  buildFilterForm();
  buildColumnChooser();
  buildAggregateForm();
  loadSuggestions();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = key();
  $("#key-state").textContent = key() ? "saved" : "";
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem("gamelens.key", $("#api-key").value.trim());
    $("#key-state").textContent = "saved";
    showMessage("");
    schema = null;
    render();
  });
  for (const a of document.querySelectorAll("nav a")) a.addEventListener("click", (event) => {
    event.preventDefault();
    const params = filterParams(state());
    params.set("view", a.dataset.view);
    go(params);
  });
  $("#upload-form").addEventListener("submit", submitUpload);
  $("#export-csv").addEventListener("click", () => exportAs("csv"));
  $("#export-ndjson").addEventListener("click", () => exportAs("ndjson"));
  $("#detail-close").addEventListener("click", () => { $("#detail").hidden = true; });
  $("#copy-curl").addEventListener("click", () => {
    const [method, url] = $("#api-url").textContent.split(" ");
    const curl = `curl ${method === "GET" ? "" : `-X ${method} `}-H "Authorization: Bearer $GAMELENS_KEY" '${url}'`;
    navigator.clipboard?.writeText(curl);
    $("#copy-curl").dataset.copied = curl;
    showMessage("Copied: " + curl);
  });
  window.addEventListener("popstate", render);
  render();
});
