// GameLens web UI: plain JavaScript, no build step, nothing from a CDN.
// The page's state lives in its URL (?view=explore&genres=indie&sort=-rating...), in the API's own
// parameter names, so a view can be bookmarked and shared, the Back button works, and every view
// doubles as an example of the URL API (shown in the footer, copyable as curl).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
};
const SVGNS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

const VIEWS = ["explore", "aggregate", "trends", "compare", "upload"];
const CONTROL = new Set(["view", "sort", "offset", "limit", "fields", "group_by", "metrics", "cursor", "format",
  "top", "facet", "facet_size", "page", "game", "having", "series", "a", "b"]);
// Ready-made pairs of segments for Compare (each a query string of filters).
const COMPARISONS = [["Free vs paid", "price=0", "price__gt=0"], ["Indie vs not", "genres__has=Indie", "genres__ne=Indie"],
  ["Linux vs not", "linux=true", "linux=false"], ["Since 2020 vs before", "release_date__gte=2020-01-01", "release_date__lt=2020-01-01"]];
const DEFAULT_FIELDS = ["name", "release_date", "price", "reviews", "rating", "est_owners", "genres"];
const TREND_DIMS = ["genres", "tags", "categories", "developers", "publishers"];
const TREND_METRICS = [["count", "Games"], ["growth", "Growth in games vs the year before"],
  ["median:price", "Median price"], ["avg:rating", "Average rating"], ["share(rating__gte=0.8)", "Share rated 80%+"],
  ["share(linux=true)", "Share on Linux"], ["share(price=0)", "Share free"], ["sum:est_revenue", "Estimated revenue"],
  ["median:reviews", "Median reviews"]];
const SHARE_80 = "share(rating__gte=0.8)";
// Shares offered in the menus (any other share(...) from a link is shown as written).
const SHARES = [[SHARE_80, "share rated 80%+"], ["share(linux=true)", "share on Linux"],
  ["share(mac=true)", "share on Mac"], ["share(price=0)", "share free"]];
// Metrics the aggregate table can add beside the chart's one.
const EXTRAS = [["median:price", "median price"], ["avg:rating", "average rating"], [SHARE_80, "share rated 80%+"],
  ["sum:est_revenue", "est. revenue"], ["median:reviews", "median reviews"], ["share(linux=true)", "share on Linux"]];
const QUESTIONS = [
  ["Top tags by estimated revenue since 2020",
    "view=aggregate&group_by=tags&metrics=count,sum:est_revenue&sort=-sum_est_revenue&release_date__gte=2020-01-01&limit=15"],
  ["Which price bands are rated best", `view=aggregate&group_by=price_band&metrics=count,avg:rating,${SHARE_80}&sort=price_band`],
  ["Studios with the most games rated 80%+", "view=aggregate&group_by=developers&metrics=count&rating__gte=0.8&limit=15"],
  ["How has the roguelike tag grown", "view=trends&group_by=release_year&metrics=count&tags=rogue"],
  ["The 8 biggest genres, year by year", "view=trends&group_by=genres,release_year&metrics=count&top=8"],
  ["Best-rated games with 1,000+ reviews", "view=explore&reviews__gte=1000&sort=-rating"],
];
const PALETTE = ["#2456c7", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#5b8c2a", "#c2185b", "#00838f", "#6d4c41", "#546e7a"];

let schema = null;
let lastCall = null;  // the last request the page made: what "Copy as curl" copies
let pollTimer = null;

// --- numbers and words --------------------------------------------------------------------------

const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const plural = (n, word) => `${Number(n).toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

function fmtNumber(v) {
  if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
  const a = Math.abs(v);
  if (Number.isInteger(v)) return a >= 1e6 ? COMPACT.format(v) : v.toLocaleString("en-US");
  let digits = 3; // fewer decimals as numbers grow
  if (a >= 100) digits = 0;
  else if (a >= 1) digits = 2;
  return v.toLocaleString("en-US", { maximumFractionDigits: digits });
}
const fmtPercent = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "");
// Dollars and cents under a thousand, compact above ($5.8K, $186.2K): one style in a column.
function fmtMoney(v) {
  if (typeof v !== "number") return "";
  return Math.abs(v) >= 1000 ? `$${COMPACT.format(v)}` : `$${v.toFixed(2)}`;
}
const fmtLabel = (v) => (v === null || v === undefined ? "" : String(v));  // ids and years: 2008, not 2,008
const FORMATS = { id: fmtLabel, year: fmtLabel, month: fmtLabel, date: fmtLabel, money: fmtMoney, percent: fmtPercent };

// The unit /schema gives a column, a bucket or a metric's output (count, fn_column, share_...).
function unitOf(name) {
  const col = schema.columns.find((c) => c.name === name);
  if (col) return col.unit;
  const bucket = schema.buckets.find((b) => b.name === name);
  if (bucket) return bucket.unit;
  const fn = schema.metrics.find((m) => name === m.name || name.startsWith(`${m.name}_`));
  if (!fn) return null;
  if (fn.unit) return fn.unit;
  return unitOf(name.slice(fn.name.length + 1));  // sum_price is in the unit of price
}
const formatterFor = (name) => FORMATS[unitOf(name)] || fmtNumber;
function cell(name, value) {
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (value === null || value === undefined) return "";
  return typeof value === "number" ? formatterFor(name)(value) : String(value);
}
const column = (name) => schema.columns.find((c) => c.name === name);
const label = (name) => name.replaceAll("_", " ");
const hint = (col) => (col && col.formula ? `${col.doc}\n= ${col.formula}${col.source ? `\nSource: ${col.source}` : ""}` : col?.doc);

// --- the key, the API, and what the page asked it ----------------------------------------------

const key = () => localStorage.getItem("gamelens.key") || "";

function record(method, path, body) {
  lastCall = { method, url: new URL(path, location.origin).href, body };
  $("#api-url").textContent = `${method} ${lastCall.url}`;
}

async function api(path, options = {}) {
  const method = options.method || "GET";
  record(method, path, options.show);
  const headers = { ...(options.headers || {}) };
  if (key()) headers.Authorization = `Bearer ${key()}`;
  const response = await fetch(path, { method, body: options.body, headers });
  if (!response.ok) {
    let err = {};
    try { err = (await response.json()).error || {}; } catch (e) { /* not JSON */ }
    const text = {
      401: "Your API key is missing or not valid: enter a key (see the welcome notes).",
      403: "Your key is a reader key; this needs an admin key.",
      429: `Too many requests; retry in ${response.headers.get("Retry-After") || "a few"} s.`,
    }[response.status] || err.message || `HTTP ${response.status}`;
    const error = new Error(text);
    Object.assign(error, { status: response.status, code: err.code, body: err });
    throw error;
  }
  return response;
}
const getJson = async (path) => (await api(path)).json();

function showMessage(text, kind = "info") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

// --- URL state -----------------------------------------------------------------------------------

const state = () => new URLSearchParams(location.search);
function go(params, replace = false, historyState = null) {
  for (const [k, v] of [...params]) if (v === "") params.delete(k);
  const url = `${location.pathname}?${params.toString()}`;
  (replace ? history.replaceState : history.pushState).call(history, historyState, "", url);
  render();
}
function filterParams(params) {
  const out = new URLSearchParams();
  for (const [k, v] of params) if (!CONTROL.has(k)) out.append(k, v);
  return out;
}
const viewOf = (params) => (VIEWS.includes(params.get("view")) ? params.get("view") : "explore");

// --- the filter form (from /schema) --------------------------------------------------------------

const OPS = [["exact", "="], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["ne", "≠"]];

function filterField(col) {
  const id = `f-${col.name}`;
  if (col.type === "string" || col.type === "list") {
    const input = el("input", { type: "search", id, name: col.name,
      placeholder: col.type === "list" ? "any element contains" : "contains", list: col.type === "list" ? `${id}-values` : null });
    return [input, col.type === "list" ? el("datalist", { id: `${id}-values` }) : ""];
  }
  if (["number", "decimal", "float"].includes(col.type)) {
    const op = el("select", { id: `${id}-op`, "aria-label": `${label(col.name)} operator` },
      ...OPS.map(([k, text]) => el("option", { value: k }, text)));
    const percent = col.unit === "percent";  // typed as shown: 0 to 100
    return el("span", { class: "pair" }, op, el("input", { type: "number", id, "data-op-for": col.name,
      "data-percent": percent ? "1" : null, min: percent ? "0" : null, max: percent ? "100" : null,
      placeholder: percent ? "%" : null, step: col.type === "number" ? "1" : "any",
      "aria-label": percent ? `${label(col.name)} in percent` : label(col.name) }));
  }
  if (col.type === "date") {
    return el("span", { class: "pair" },
      el("input", { type: "date", id: `${id}-from`, name: `${col.name}__gte`, "aria-label": `${label(col.name)} from` }), "–",
      el("input", { type: "date", id: `${id}-to`, name: `${col.name}__lte`, "aria-label": `${label(col.name)} to` }));
  }
  // A boolean filters true, false, or either.
  return el("select", { id, name: col.name, "data-bool": "1" },
    el("option", { value: "" }, "either"), el("option", { value: "true" }, "yes"), el("option", { value: "false" }, "no"));
}

function buildFilterForm() {
  const form = $("#filters");
  form.replaceChildren();
  for (const col of schema.columns) {
    if (col.type === "raw") continue;
    const title = el("span", {}, label(col.name), col.derived ? el("span", { class: "derived-mark", title: hint(col) }, " ƒ") : "");
    form.append(el("label", { for: `f-${col.name}`, title: hint(col) }, title, filterField(col)));
  }
  form.append(el("span", { class: "actions" },
    el("button", { type: "submit", id: "apply", class: "primary" }, "Filter"),
    el("button", { type: "button", id: "clear", onclick: clearFilters }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = readFilterForm();
    const current = state();
    for (const k of ["view", "sort", "fields", "group_by", "metrics", "limit", "top"]) if (current.get(k)) params.set(k, current.get(k));
    go(params);
  });
}

function clearFilters() {
  const params = state();
  const kept = new URLSearchParams();
  for (const [k, v] of params) if (CONTROL.has(k) && !["cursor", "offset", "page"].includes(k)) kept.append(k, v);
  go(kept);
}

function readFilterForm() {
  const params = new URLSearchParams();
  for (const input of $("#filters").querySelectorAll("input, select[data-bool]")) {
    if (!input.value) continue;
    if (input.dataset.opFor) {
      const value = input.dataset.percent ? String(Number(input.value) / 100) : input.value;
      params.append(`${input.dataset.opFor}__${$(`#f-${input.dataset.opFor}-op`).value}`, value);
    } else params.append(input.name, input.value);
  }
  return params;
}

// The form always shows what the URL says (after Clear, Back, Forward, or a link).
function fillFilterForm(params) {
  let count = 0;
  for (const input of $("#filters").querySelectorAll("input, select[data-bool]")) {
    if (input.dataset.opFor) {
      const col = input.dataset.opFor;
      const op = OPS.map(([k]) => k).find((k) => params.has(`${col}__${k}`) || (k === "exact" && params.has(col)));
      $(`#f-${col}-op`).value = op || "exact";
      const value = op ? (params.get(`${col}__${op}`) ?? params.get(col)) : "";
      input.value = value && input.dataset.percent ? String(Math.round(Number(value) * 10000) / 100) : value;
    } else input.value = params.get(input.name) || "";
    if (input.value) count += 1;
  }
  const other = [...filterParams(params).keys()].length - count;
  $("#filter-count").textContent = count + Math.max(other, 0) ? `(${count + Math.max(other, 0)} active)` : "";
}

async function loadSuggestions() {
  const lists = ["genres", "tags", "categories"];
  const q = new URLSearchParams(lists.map((n) => ["facet", n]));
  q.set("limit", "1"); q.set("fields", "app_id"); q.set("facet_size", "100");
  try {
    const body = await (await fetch(`/api/v1/games?${q}`, { headers: { Authorization: `Bearer ${key()}` } })).json();
    for (const name of lists) $(`#f-${name}-values`)?.replaceChildren(...(body.facets?.[name] || []).map((f) => el("option", { value: f.value })));
  } catch (e) { /* suggestions are a convenience */ }
}

// --- explore --------------------------------------------------------------------------------------

function chosenFields(params) {
  return params.get("fields") ? params.get("fields").split(",").filter((f) => column(f) || f.endsWith("_raw")) : DEFAULT_FIELDS;
}

function buildColumnChooser() {
  const names = schema.columns.map((c) => c.name);
  $("#column-list").replaceChildren(...names.map((name) => el("label", { title: hint(column(name)) },
    el("input", { type: "checkbox", value: name }), label(name))));
  $("#column-list").addEventListener("change", () => {
    const chosen = [...$("#column-list").querySelectorAll("input:checked")].map((i) => i.value);
    const params = state();
    params.set("fields", chosen.join(","));
    params.delete("cursor"); params.delete("page");
    go(params);
  });
}

async function renderExplore(params) {
  const fields = chosenFields(params);
  for (const box of $("#column-list").querySelectorAll("input")) box.checked = fields.includes(box.value);
  const shown = ["name", ...fields.filter((f) => f !== "name")].filter((f) => fields.includes(f));
  const q = new URLSearchParams(params);
  for (const k of ["view", "page", "game"]) q.delete(k);
  q.set("fields", [...new Set([...shown, "app_id"])].join(","));
  if (!q.get("limit")) q.set("limit", "50");
  renderSummary(params);
  const body = await getJson(`/api/v1/games?${q}`);
  const sort = params.get("sort") || "";
  $("#results thead").replaceChildren(el("tr", {}, ...shown.map((f, i) => {
    const col = column(f);
    const dir = { [f]: " ▲", [`-${f}`]: " ▼" }[sort] || "";
    const classes = [col?.sortable ? "sortable" : "", i === 0 && f === "name" ? "sticky" : "", isNumeric(col) ? "num" : ""].join(" ").trim();
    return el("th", { class: classes, "data-field": f, title: hint(col), onclick: col?.sortable ? () => sortBy(f) : null,
      tabindex: col?.sortable ? "0" : null, onkeydown: col?.sortable ? (event) => { if (event.key === "Enter") sortBy(f); } : null },
      label(f) + (col?.derived ? " ƒ" : "") + dir);
  })));
  $("#results tbody").replaceChildren(...body.rows.map((row) => el("tr", { "data-app-id": row.app_id, tabindex: "0",
    onclick: () => openGame(row.app_id), onkeydown: (event) => { if (event.key === "Enter") openGame(row.app_id); } },
    ...shown.map((f, i) => el("td", { class: [i === 0 && f === "name" ? "sticky" : "", isNumeric(column(f)) ? "num" : ""].join(" ").trim(),
      title: typeof row[f] === "string" && row[f].length > 40 ? row[f].slice(0, 300) : null }, cell(f, row[f]))))));
  const pageIndex = history.state?.stack?.length || 0;
  const first = pageIndex * body.limit + 1;
  $("#total").textContent = plural(body.total, "game");
  $("#total").dataset.total = body.total;
  $("#page").textContent = body.total ? `${first.toLocaleString("en-US")}–${(first + body.rows.length - 1).toLocaleString("en-US")}` : "";
  // Pages follow the keyset cursor (fast at any depth); Prev walks back the cursors this tab has seen.
  $("#prev").disabled = !params.get("cursor");
  $("#next").disabled = !body.next_cursor;
  $("#prev").onclick = () => {
    const stack = [...(history.state?.stack || [])];
    const p = state();
    const previous = stack.pop();
    if (previous) p.set("cursor", previous); else p.delete("cursor");
    go(p, false, { stack });
  };
  $("#next").onclick = () => {
    const stack = [...(history.state?.stack || []), params.get("cursor") || ""];
    const p = state();
    p.set("cursor", body.next_cursor);
    go(p, false, { stack });
  };
  for (const b of ["#export-csv", "#export-ndjson"]) $(b).disabled = !body.total;
  if (params.get("game")) await showDetail(params.get("game"));
  else $("#detail").hidden = true;
  if (returnFocusTo) $(`#results tr[data-app-id="${CSS.escape(returnFocusTo)}"]`)?.focus();
  returnFocusTo = null;
}
const isNumeric = (col) => col && ["number", "decimal", "float"].includes(col.type);

function sortBy(field) {
  const params = state();
  params.set("sort", params.get("sort") === field ? `-${field}` : field);
  params.delete("cursor"); params.delete("offset"); params.delete("page");
  go(params);
}

// A game's own page: part of the URL (shareable; Back closes it), closed by Esc or Close, which give
// the focus back to its row.
function openGame(appId) {
  const params = state();
  params.set("game", appId);
  go(params);
}

let returnFocusTo = null;  // the row a closed game's page gives the focus back to, once re-drawn
function closeGame() {
  const params = state();
  returnFocusTo = params.get("game");
  params.delete("game");
  go(params);
}

async function showDetail(appId) {
  const game = await getJson(`/api/v1/games/${encodeURIComponent(appId)}`);
  $("#detail-title").textContent = game.name;
  $("#detail-store").href = `https://store.steampowered.com/app/${encodeURIComponent(game.app_id)}`;
  const text = game.about_the_game || "";
  $("#detail-about").replaceChildren(...text.split(/\n+|\s{3,}/).filter((p) => p.trim()).map((p) => el("p", {}, p.trim())));
  const shown = Object.entries(game).filter(([k]) => !["name", "about_the_game"].includes(k));
  $("#detail-body").replaceChildren(...shown.flatMap(([k, v]) => {
    const col = column(k);
    return [el("dt", { title: hint(col) }, label(k) + (col?.derived ? " ƒ" : "")), el("dd", {}, cell(k, v))];
  }));
  $("#detail").hidden = false;
  $("#detail-close").focus();
}

async function renderSummary(params) {
  const box = $("#summary");
  try {
    const s = await (await fetch(`/api/v1/games/summary?${filterParams(params)}`, { headers: { Authorization: `Bearer ${key()}` } })).json();
    if (s.error) { box.replaceChildren(); return; }
    box.dataset.games = s.games;
    if (!s.games) {  // no blank cards, $0.00 or "none": say so, and offer the way out
      box.replaceChildren(el("p", { class: "empty-result" }, "No games match these filters. ",
        el("button", { type: "button", class: "clear-filters", onclick: clearFilters }, "Clear the filters")));
      return;
    }
    const tile = (labelText, value, title) => el("div", { class: "tile", title }, el("div", { class: "label" }, labelText), el("div", { class: "value" }, value));
    // Each item is a name and its figure: a long name is shortened, its figure never.
    const list = (labelText, items) => el("div", { class: "tile list" }, el("div", { class: "label" }, labelText),
      el("ol", {}, ...items.map(([what, figure]) => el("li", { title: `${what} ${figure}` },
        el("span", { class: "what" }, what), el("span", { class: "figure" }, figure)))));
    box.replaceChildren(
      tile("Games", s.games.toLocaleString("en-US")),
      tile("Free", fmtPercent(s.share_free)),
      tile("Median price", fmtMoney(s.median_price)),
      tile("90th pct. price", fmtMoney(s.p90_price)),
      tile("Median reviews", fmtNumber(s.median_reviews)),
      tile("Average rating", fmtPercent(s.avg_rating), "SteamDB's rating; games without reviews are left out"),
      tile("Est. revenue", fmtMoney(s.est_revenue), s.est_revenue_note),
      list("Price bands", s.price_bands.map((b) => [b.band, plural(b.games, "game")])),
      list("Top tags", s.top_tags.slice(0, 5).map((t) => [t.value, `(${t.games})`])),
      list("Top genres", s.top_genres.slice(0, 5).map((t) => [t.value, `(${t.games})`])),
      list("Best rated", s.top_rated.slice(0, 5).map((g) => [g.name, fmtPercent(g.rating)])),
      list("Most reviewed", s.most_reviewed.slice(0, 5).map((g) => [g.name, fmtNumber(g.reviews)])));
  } catch (e) { box.replaceChildren(); }
}

async function exportAs(format, path = "/api/v1/games") {
  const params = state();
  for (const k of ["view", "offset", "limit", "cursor", "page", "game"]) params.delete(k);
  params.set("format", format);
  const response = await api(`${path}?${params}`);
  const blob = await response.blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: `gamelens.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  const cut = response.headers.get("X-Truncated") === "true";
  showMessage(cut ? `Export cut at ${response.headers.get("X-Exported-Count")} of ${response.headers.get("X-Total-Count")} rows (GAMELENS_EXPORT_MAX_ROWS).`
    : `Exported ${plural(Number(response.headers.get("X-Exported-Count")), "row")}.`, cut ? "error" : "info");
}

// --- aggregate ----------------------------------------------------------------------------------

const isBucket = (name) => schema.buckets.some((b) => b.name === name);
// The output name the API gives a metric: count, fn_column, share_column_op.
function aliasOf(metric) {
  const share = /^share\((\w+?)(?:__(\w+))?=/.exec(metric);
  if (share) return `share_${share[1]}_${share[2] || "is"}`;
  return metric.replace(":", "_");
}
const measureOf = (metricsParam) => metricsParam.split(/,(?![^(]*\))/).find((m) => m !== "count") || "count";

function buildAggregateForm() {
  const groups = [...schema.columns.filter((c) => c.groupable).map((c) => c.name), ...schema.buckets.map((b) => b.name)];
  $("#agg-group").replaceChildren(...groups.map((g) => el("option", { value: g }, label(g))));
  const metrics = [...schema.metrics.filter((m) => !["share", "growth"].includes(m.name)).map((m) => [m.name, m.name]), ...SHARES];
  $("#agg-metric").replaceChildren(...metrics.map(([v, text]) => el("option", { value: v }, text)));
  $("#agg-extra").replaceChildren(...EXTRAS.map(([v, text]) => el("option", { value: v }, text)));
  $("#agg-metric").addEventListener("change", columnsForMetric);
  columnsForMetric();
  $("#agg-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = readFilterForm();  // the filters the form shows, applied or not yet
    params.set("view", "aggregate");
    params.set("group_by", $("#agg-group").value);
    const fn = $("#agg-metric").value;
    const metric = fn === "count" || fn.startsWith("share(") ? fn : `${fn}:${$("#agg-column").value}`;
    const extras = [...$("#agg-extra").selectedOptions].map((o) => o.value);
    params.set("metrics", [...new Set(["count", metric, ...extras])].join(","));
    if ($("#agg-min").value) params.set("having", `count__gte:${$("#agg-min").value}`);
    params.set("limit", $("#agg-limit").value || "20");
    go(params);
  });
  $("#agg-export").addEventListener("click", () => exportAs("csv", "/api/v1/games/aggregate"));
}

function columnsForMetric() {
  const metric = schema.metrics.find((m) => m.name === $("#agg-metric").value);
  const columns = metric ? metric.columns : [];
  $("#agg-column").replaceChildren(...columns.map((c) => el("option", { value: c }, label(c))));
  $("#agg-column").disabled = columns.length === 0;
}

async function renderAggregate(params) {
  const group = (params.get("group_by") || "genres").split(",")[0];
  const metrics = params.get("metrics") || "count";
  const limit = params.get("limit") || "20";
  const measure = measureOf(metrics);
  // The form says what the URL says.
  $("#agg-group").value = group;
  const share = measure.startsWith("share(");
  if (share && ![...$("#agg-metric").options].some((o) => o.value === measure)) {
    $("#agg-metric").append(el("option", { value: measure }, measure));  // a share from a link, as written
  }
  const [fn, col] = share ? [measure, ""] : measure.split(":");
  $("#agg-metric").value = fn;
  columnsForMetric();
  if (col) $("#agg-column").value = col;
  $("#agg-limit").value = limit;
  const listed = metrics.split(/,(?![^(]*\))/);
  for (const option of $("#agg-extra").options) option.selected = listed.includes(option.value) && option.value !== measure;
  const having = /^count__gte:(\d+)$/.exec(params.get("having") || "");
  $("#agg-min").value = having ? having[1] : "";
  const q = filterParams(params);
  q.set("group_by", group); q.set("metrics", metrics); q.set("limit", limit);
  if (params.get("having")) q.set("having", params.get("having"));
  // Bars of a measure in its order, or a bucket (years, price bands) in its natural order.
  q.set("sort", params.get("sort") || (isBucket(group) ? group : `-${aliasOf(measure)}`));
  const body = await getJson(`/api/v1/games/aggregate?${q}`);
  const alias = aliasOf(measure);  // the chart's measure; the table shows every metric
  $("#agg-table").dataset.query = q.toString();
  const names = [...body.group_by, ...body.metrics];
  $("#agg-table thead").replaceChildren(el("tr", {}, ...names.map((n, i) => el("th", { class: i >= body.group_by.length ? "num" : "" }, label(n)))));
  $("#agg-table tbody").replaceChildren(...body.rows.map((r) => el("tr", {}, ...names.map((n, i) =>
    el("td", { class: i >= body.group_by.length ? "num" : "" }, n === group && r[n] === null ? "(none)" : cell(n, r[n]))))));
  $("#agg-caption").textContent = `${label(alias)} by ${label(group)} (${plural(body.total_groups, "group")})`;
  barChart($("#agg-chart"), body.rows.map((r) => [r[group] === null ? "(none)" : cell(group, r[group]), r[alias]]),
    formatterFor(alias), isWhole(alias));
  const years = filterParams(params);
  years.set("group_by", "release_year"); years.set("sort", "release_year"); years.set("limit", "500");
  const byYear = await (await fetch(`/api/v1/games/aggregate?${years}`, { headers: { Authorization: `Bearer ${key()}` } })).json();
  yearChart($("#year-chart"), (byYear.rows || []).filter((r) => r.release_year !== null).map((r) => [r.release_year, r.count]));
}

// --- trends -------------------------------------------------------------------------------------

function buildTrendForm() {
  $("#trend-dim").replaceChildren(el("option", { value: "" }, "all matching games"), ...TREND_DIMS.map((d) => el("option", { value: d }, label(d))));
  $("#trend-metric").replaceChildren(...TREND_METRICS.map(([v, text]) => el("option", { value: v }, text)));
  $("#trend-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = readFilterForm();  // the filters the form shows, applied or not yet
    params.set("view", "trends");
    const dim = $("#trend-dim").value;
    params.set("group_by", dim ? `${dim},release_year` : "release_year");
    params.set("metrics", $("#trend-metric").value);
    const chosen = $("#trend-series").value.split(",").map((v) => v.trim()).filter(Boolean);
    if (dim && chosen.length) params.set("series", chosen.join(","));  // these series, not the top N
    else if (dim) params.set("top", $("#trend-n").value || "8");
    go(params);
  });
}

async function renderTrends(params) {
  const keys = (params.get("group_by") || "genres,release_year").split(",");
  const dim = keys.length > 1 ? keys[0] : "";
  const metric = params.get("metrics") || "count";
  const top = params.get("top") || "8";
  const chosen = params.get("series") || "";
  $("#trend-dim").value = dim;
  if (![...$("#trend-metric").options].some((o) => o.value === metric)) {  // a metric from a link: shown as is
    $("#trend-metric").append(el("option", { value: metric }, metric));
  }
  $("#trend-metric").value = metric;
  $("#trend-n").value = top;
  $("#trend-n").disabled = !dim;
  $("#trend-series").value = chosen;
  $("#trend-series").disabled = !dim;
  const q = filterParams(params);
  q.set("group_by", dim ? `${dim},release_year` : "release_year");
  q.set("metrics", metric === "count" ? "count" : `${metric},count`);  // count: the n behind each point
  q.set("limit", "1000");
  if (dim && chosen) { q.set("series", chosen); q.set("sort", `${dim},release_year`); }
  else if (dim) q.set("top", top);
  else q.set("sort", "release_year");
  const body = await getJson(`/api/v1/games/aggregate?${q}`);
  const alias = body.metrics[0];
  const rows = body.rows.filter((r) => r.release_year !== null);
  const names = dim ? (chosen ? chosen.split(",").filter((n) => rows.some((r) => r[dim] === n)) : body.series || [])
    : ["all matching games"];
  const series = names.map((name) => {
    const mine = rows.filter((r) => !dim || r[dim] === name);
    return { name, points: new Map(mine.map((r) => [r.release_year, r[alias]])), n: new Map(mine.map((r) => [r.release_year, r.count])) };
  });
  const metricName = TREND_METRICS.find(([v]) => v === metric)?.[1] || label(alias);
  $("#trend-caption").textContent = `${metricName} per release year${dim ? `, top ${names.length} ${label(dim)}` : ""}`;
  // Counts and sums are 0 in a year without games; medians, averages and shares have no value there.
  const additive = /^(count|sum_)/.test(alias);
  const years = yearRange(rows.map((r) => r.release_year));
  lineChart($("#trend-chart"), $("#trend-legend"), series, years, additive, formatterFor(alias), isWhole(alias));
  $("#trend-table thead").replaceChildren(el("tr", {}, el("th", {}, "year"), ...names.map((n) => el("th", { class: "num" }, String(n)))));
  $("#trend-table tbody").replaceChildren(...years.map((y) => el("tr", {}, el("td", {}, String(y)),
    ...series.map((s) => el("td", { class: "num" }, trendCell(s, y, alias, additive))))));
  $("#trend-table").dataset.query = q.toString();  // what the table now shows
}

// --- compare ------------------------------------------------------------------------------------

function buildCompareForm() {
  $("#compare-preset").replaceChildren(el("option", { value: "" }, "(the segments in the link)"),
    ...COMPARISONS.map(([text, a, b]) => el("option", { value: `${a}|${b}` }, text)));
  $("#compare-preset").addEventListener("change", () => {
    const [a, b] = $("#compare-preset").value.split("|");
    if (!a) return;
    const params = new URLSearchParams({ view: "compare", a, b });
    go(params);
  });
  for (const side of ["a", "b"]) $(`#compare-${side}`).addEventListener("click", () => {
    const params = state();
    params.set(side, readFilterForm().toString());  // the segment is what the filter form shows
    go(params);
  });
}

// Two segments side by side: the figures an analyst weighs, from one summary each.
async function renderCompare(params) {
  const a = params.get("a") || "price=0", b = params.get("b") || "price__gt=0";
  const match = COMPARISONS.find(([, x, y]) => x === a && y === b);
  $("#compare-preset").value = match ? `${a}|${b}` : "";
  const [sa, sb] = await Promise.all([a, b].map((q) => getJson(`/api/v1/games/summary?${q}`)));
  const rows = [["games", "Games", fmtNumber], ["share_free", "Free", fmtPercent], ["median_price", "Median price", fmtMoney],
    ["median_reviews", "Median reviews", fmtNumber], ["avg_rating", "Average rating", fmtPercent],
    ["est_revenue", "Est. revenue", fmtMoney]];
  const named = (q) => q.replaceAll("&", ", ").replaceAll("__", " ") || "all games";
  $("#compare-table thead").replaceChildren(el("tr", {}, el("th", {}, ""), el("th", { class: "num" }, `A: ${named(a)}`),
    el("th", { class: "num" }, `B: ${named(b)}`)));
  $("#compare-table tbody").replaceChildren(...rows.map(([key, text, fmt]) => el("tr", { "data-figure": key },
    el("th", {}, text), el("td", { class: "num" }, fmt(sa[key])), el("td", { class: "num" }, fmt(sb[key])))));
  $("#compare-table").dataset.segments = `${a}|${b}`;  // what the table now shows
}

// A year without games: 0 for counts and sums, blank for medians, averages and shares.
function trendCell(s, year, alias, additive) {
  if (s.points.has(year)) return cell(alias, s.points.get(year));
  return additive ? "0" : "";
}

function yearRange(values) {
  if (!values.length) return [];
  const lo = Math.min(...values), hi = Math.max(...values);
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

// --- charts (plain SVG) ---------------------------------------------------------------------------

// The top of an axis with `intervals` gridlines: a round number, and for whole things (counts) one
// whose every tick is whole (0, 3, 6, not 2.5).
function niceMax(max, intervals, whole) {
  if (max <= 0) return whole ? intervals : 1;
  const step = 10 ** Math.floor(Math.log10(max));
  const top = Math.ceil(max / step) * step;
  return whole ? Math.ceil(top / intervals) * intervals : top;
}
const isWhole = (name) => unitOf(name) === "count";

// Charts are drawn to the width they get, so that their text stays at its size on a phone.
const widthOf = (target, fallback) => Math.round(target.getBoundingClientRect().width) || fallback;

function barChart(target, data, fmt, whole) {
  target.replaceChildren();
  const width = widthOf(target, 620), rowH = 22, left = Math.min(150, Math.round(width * 0.34)), plot = width - left - 70;
  const top = niceMax(Math.max(0, ...data.map(([, v]) => Number(v) || 0)), 2, whole);
  target.setAttribute("viewBox", `0 0 ${width} ${rowH * data.length + 28}`);
  for (const t of [0, 0.5, 1]) {
    const x = left + t * plot;
    target.append(svg("line", { x1: x, x2: x, y1: 0, y2: rowH * data.length, class: "grid-line" }),
      svg("text", { x, y: rowH * data.length + 16, class: "muted", "text-anchor": "middle" }, fmt(top * t)));
  }
  data.forEach(([name, value], i) => {
    const w = Math.round(((Number(value) || 0) / top) * plot);
    const bar = svg("rect", { x: left, y: i * rowH + 3, width: Math.max(1, w), height: rowH - 6, class: "bar" });
    bar.append(svg("title", {}, `${name}: ${fmt(value)}`));
    const room = Math.max(6, Math.floor((left - 8) / 7));  // characters that fit beside the bar
    target.append(svg("text", { x: left - 6, y: i * rowH + 15, "text-anchor": "end" }, name.length > room ? `${name.slice(0, room - 1)}…` : name),
      bar, svg("text", { x: left + w + 5, y: i * rowH + 15, class: "muted" }, fmt(value)));
  });
  target.append(svg("line", { x1: left, x2: left, y1: 0, y2: rowH * data.length, class: "axis" }));
}

// One column per year, years without games shown as zero, with value and year axes.
function yearChart(target, points) {
  target.replaceChildren();
  const values = new Map(points);
  const years = yearRange(points.map(([y]) => y));
  const left = 40, bottom = 20, height = 170, width = widthOf(target, 620), plot = width - left - 10;
  const top = niceMax(Math.max(0, ...points.map(([, v]) => v)), 2, true);
  target.setAttribute("viewBox", `0 0 ${width} ${height + bottom}`);
  for (const t of [0, 0.5, 1]) {
    const y = height - t * (height - 10);
    target.append(svg("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "grid-line" }),
      svg("text", { x: left - 4, y: y + 4, class: "muted", "text-anchor": "end" }, fmtNumber(top * t)));
  }
  const w = plot / Math.max(1, years.length);
  const every = Math.ceil(years.length / Math.max(3, Math.floor(plot / 45)));  // a year label per 45 px
  years.forEach((year, i) => {
    const v = values.get(year) || 0;
    const h = (v / top) * (height - 10);
    const bar = svg("rect", { x: left + i * w + 1, y: height - h, width: Math.max(1, w - 2), height: h, class: "bar", "data-year": year });
    bar.append(svg("title", {}, `${year}: ${plural(v, "game")}`));
    target.append(bar);
    if (i % every === 0) target.append(svg("text", { x: left + i * w + w / 2, y: height + 14, class: "muted", "text-anchor": "middle" }, String(year)));
  });
  target.append(svg("line", { x1: left, x2: width - 10, y1: height, y2: height, class: "axis" }));
}

function lineChart(target, legend, series, years, additive, fmt, whole) {
  target.replaceChildren();
  legend.replaceChildren();
  const left = 56, bottom = 22, height = 260, width = widthOf(target, 760), plot = width - left - 14;
  const values = series.flatMap((s) => [...s.points.values()]).map(Number);
  const top = niceMax(Math.max(0, ...values), 4, whole);
  target.setAttribute("viewBox", `0 0 ${width} ${height + bottom}`);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const y = height - t * (height - 10);
    target.append(svg("line", { x1: left, x2: width - 14, y1: y, y2: y, class: "grid-line" }),
      svg("text", { x: left - 5, y: y + 4, class: "muted", "text-anchor": "end" }, fmt(top * t)));
  }
  const x = (year) => left + (years.length > 1 ? ((year - years[0]) / (years.length - 1)) * plot : plot / 2);
  const y = (v) => height - (Number(v) / top) * (height - 10);
  const every = Math.ceil(years.length / Math.max(3, Math.floor(plot / 45)));
  years.forEach((year, i) => {
    if (i % every === 0) target.append(svg("text", { x: x(year), y: height + 15, class: "muted", "text-anchor": "middle" }, String(year)));
  });
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    let path = "", pen = "M";
    for (const year of years) {
      const has = s.points.has(year);
      if (!has && !additive) { pen = "M"; continue; }
      const v = has ? s.points.get(year) : 0;
      path += `${pen}${x(year).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
      const dot = svg("circle", { cx: x(year), cy: y(v), r: 2.5, fill: color, "data-series": s.name });
      const n = s.n?.get(year) ?? 0;
      dot.append(svg("title", {}, `${s.name}, ${year}: ${fmt(v)} (n = ${plural(n, "game")})`));
      target.append(dot);
    }
    target.prepend(svg("path", { d: path.trim(), class: "series", stroke: color, "data-series": s.name }));
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = color;  // CSSOM, allowed by the CSP (inline style attributes are not)
    // A click on the legend hides or shows its line (and says which, for screen readers).
    const toggle = el("button", { type: "button", class: "series-toggle", "aria-pressed": "true", onclick: () => {
      const shown = toggle.getAttribute("aria-pressed") === "true";
      toggle.setAttribute("aria-pressed", String(!shown));
      for (const part of target.querySelectorAll(`[data-series="${CSS.escape(String(s.name))}"]`)) part.classList.toggle("off", shown);
    } }, swatch, String(s.name));
    legend.append(el("li", {}, toggle));
  });
  target.append(svg("line", { x1: left, x2: width - 14, y1: height, y2: height, class: "axis" }),
    svg("line", { x1: left, x2: left, y1: 10, y2: height, class: "axis" }));
}

// --- upload ---------------------------------------------------------------------------------------

async function startUpload(request) {
  $("#upload-result").replaceChildren();
  let rec;
  try {
    rec = await (await request()).json();
  } catch (e) {
    $("#upload-result").replaceChildren(el("p", { class: "error" }, e.message));
    showMessage(e.message, "error");
    return;
  }
  $("#upload-progress").hidden = false;
  const running = await runningStates();
  while (running.includes(rec.state)) {
    showProgress(rec);
    renderHistory();
    await new Promise((r) => setTimeout(r, 300));
    rec = await getJson(`/api/v1/uploads/${rec.id}`);
  }
  showProgress(rec);
  showResult(rec);
  renderHistory();
}

const uploadLink = () => startUpload(() => {
  const body = JSON.stringify({ url: $("#upload-url").value.trim() });
  return api("/api/v1/uploads", { method: "POST", headers: { "Content-Type": "application/json" }, body, show: { json: body } });
});
const uploadFile = (file) => startUpload(() => {
  const form = new FormData();
  form.append("file", file);
  return api("/api/v1/uploads", { method: "POST", body: form, show: { file: file.name } });
});
const uploadSample = () => startUpload(() => api("/api/v1/uploads/sample", { method: "POST" }));

function showProgress(rec) {
  const bar = $("#upload-bar");
  if (rec.state === "downloading" && rec.bytes_expected) bar.value = Math.round(90 * rec.bytes_received / rec.bytes_expected);
  else if (rec.state === "loading") bar.value = 95;
  else if (rec.state === "succeeded") bar.value = 100;
  const mb = (rec.bytes_received / 1e6).toFixed(1);
  const words = { succeeded: `done: ${plural(rec.rows_loaded, "row")} loaded`, loading: `loading rows (${mb} MB received)` };
  $("#upload-state").textContent = words[rec.state] || `${rec.state} ${mb} MB`;
  $("#upload-state").dataset.state = rec.state;
}

function showResult(rec) {
  const out = [];
  if (rec.state === "succeeded") {
    out.push(el("p", { class: "ok" }, `Upload ${rec.id}: ${plural(rec.rows_loaded, "row")} stored` + (rec.rows_rejected ? `, ${rec.rows_rejected} rejected` : "") + ". ",
      el("a", { href: "?view=explore" }, "Explore them")));
  } else out.push(el("p", { class: "error" }, `Upload ${rec.id} ${rec.state}: ${rec.error?.message || ""}`));
  for (const w of rec.warnings || []) out.push(el("p", { class: "warning" }, `Warning: ${w}`));
  if ((rec.rejected_rows || []).length) {
    out.push(el("div", { class: "table-wrap" }, el("table", { class: "grid" },
      el("tr", {}, el("th", {}, "row"), el("th", {}, "column"), el("th", {}, "value"), el("th", {}, "expected")),
      ...rec.rejected_rows.map((r) => el("tr", {}, el("td", {}, r.row), el("td", {}, r.column), el("td", {}, r.value), el("td", {}, r.expected))))));
  }
  $("#upload-result").replaceChildren(...out);
}

// The browser's own time zone, named: "12/1/2026, 10:15:02 AM UTC".
const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { timeZoneName: "short" }) : "");
let announced = null;  // the upload a "… is active again" message is about: stale once another is active

let uploadStates = null;  // {running, final}: the server publishes them (GET /api/v1/uploads)
async function runningStates() {
  if (!uploadStates) uploadStates = (await getJson("/api/v1/uploads")).states;
  return uploadStates.running;
}

async function renderHistory() {
  const body = await getJson("/api/v1/uploads");
  uploadStates = body.states;
  const running = body.uploads.some((u) => uploadStates.running.includes(u.state));
  const active = body.uploads.find((u) => u.active);
  if (announced !== null && active?.id !== announced) { showMessage(""); announced = null; }
  const status = (u) => [u.state, u.active ? "active" : "", u.state === "downloading" ? `${(u.bytes_received / 1e6).toFixed(1)} MB` : "",
    u.indexes ? `indexes: ${u.indexes}` : "", u.upgrade_error ? "not upgraded" : ""].filter(Boolean).join(" · ");
  $("#upload-history tbody").replaceChildren(...body.uploads.map((u) => el("tr", { "data-state": u.state },
    el("td", {}, u.id),
    el("td", { title: u.upgrade_error || null }, status(u)),
    el("td", { class: "num" }, u.rows_loaded ? u.rows_loaded.toLocaleString("en-US") : ""),
    el("td", { title: u.finished_at || u.created_at }, when(u.finished_at || u.started_at || u.created_at)),
    el("td", {}, u.created_by || ""),
    el("td", { class: "url", title: u.url }, u.source === "link" ? u.url : `${u.source}: ${u.url}`),
    el("td", {}, u.stored && !u.active ? el("button", { type: "button", class: "activate", onclick: async () => {
      await api(`/api/v1/uploads/${u.id}/activate`, { method: "POST" });
      showMessage(`Upload ${u.id} is active again.`);
      announced = u.id;
      renderHistory();
    } }, "Activate") : ""))));
  clearTimeout(pollTimer);
  if (running && viewOf(state()) === "upload") pollTimer = setTimeout(() => renderHistory().catch(() => {}), 1000);
}

function curlOf(call) {
  const parts = ["curl"];
  if (call.method !== "GET") parts.push(`-X ${call.method}`);
  parts.push('-H "Authorization: Bearer $GAMELENS_KEY"');
  if (call.body?.json) parts.push("-H 'Content-Type: application/json'", `-d '${call.body.json.replaceAll("'", "'\\''")}'`);
  if (call.body?.file) parts.push(`-F 'file=@${call.body.file.replaceAll("'", "'\\''")}'`);
  parts.push(`'${call.url}'`);
  return parts.join(" ");
}

// --- the page -------------------------------------------------------------------------------------

function showOnly(view, { welcome = false, empty = false } = {}) {
  $("#welcome").hidden = !welcome;
  $("#empty").hidden = !empty;
  $("nav").classList.toggle("locked", welcome);
  for (const name of VIEWS) {
    $(`#view-${name}`).hidden = welcome || name !== view || (empty && name !== "upload");
    $(`#nav-${name}`).classList.toggle("current", name === view);
  }
  $("#filters-box").hidden = welcome || empty || view === "upload";
  const filtered = [...filterParams(state())].length > 0;
  $("#questions").hidden = welcome || !(empty || (view === "explore" && !filtered && !state().get("cursor")));
}

async function render() {
  const params = state();
  const view = viewOf(params);
  showMessage("");
  if (!key()) {
    showOnly(view, { welcome: true });
    $("#key-state").textContent = "API key: none";
    return;
  }
  showOnly(view);
  const home = ["aggregate", "trends", "compare"].includes(view) ? `#view-${view}` : "#view-explore";
  $(home).prepend($("#filters-box"));
  try {
    if (!schema) await init();
    fillFilterForm(params);
    $("#filters-box").open = window.innerWidth > 700 && [...filterParams(params)].length > 0;
    if (view === "explore") await renderExplore(params);
    else if (view === "aggregate") await renderAggregate(params);
    else if (view === "trends") await renderTrends(params);
    else if (view === "compare") await renderCompare(params);
    else await renderHistory();
  } catch (e) {
    if (e.code === "no_dataset") showOnly(view, { empty: true });
    else if (e.status === 401) {  // the saved key is not valid: say so where it says "saved"
      $("#key-state").textContent = "API key: not valid";
      showMessage(e.message, "error");
      showOnly(view, { welcome: true });
    }
    else showMessage(e.message, "error");
  }
}

async function init() {
  schema = await getJson("/api/v1/schema");
  buildFilterForm();
  buildColumnChooser();
  buildAggregateForm();
  buildTrendForm();
  buildCompareForm();
  loadSuggestions();
}

function useKey(value) {
  localStorage.setItem("gamelens.key", value.trim());
  $("#key-state").textContent = value.trim() ? "API key: saved" : "API key: none";
  $("#key-box").open = false;
  schema = null;
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = key();
  $("#key-state").textContent = key() ? "API key: saved" : "API key: none";
  $("#key-form").addEventListener("submit", (event) => { event.preventDefault(); useKey($("#api-key").value); });
  $("#key-forget").addEventListener("click", () => { $("#api-key").value = ""; useKey(""); });
  $("#welcome-form").addEventListener("submit", (event) => { event.preventDefault(); useKey($("#welcome-key").value); });
  $("#question-list").replaceChildren(...QUESTIONS.map(([text, query]) => el("li", {}, el("a", { href: `?${query}`, class: "question" }, text))));
  for (const a of document.querySelectorAll("nav a, a.question, #empty-upload, a.brand")) a.addEventListener("click", (event) => {
    event.preventDefault();
    const target = new URLSearchParams(a.getAttribute("href").slice(1));
    const params = a.dataset.view ? filterParams(state()) : target;
    if (a.dataset.view) params.set("view", a.dataset.view);
    go(params);
  });
  $("#upload-form").addEventListener("submit", (event) => { event.preventDefault(); uploadLink(); });
  $("#upload-file").addEventListener("change", () => { if ($("#upload-file").files[0]) uploadFile($("#upload-file").files[0]); });
  const drop = $("#file-form");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("dragging"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    if (event.dataTransfer.files[0]) uploadFile(event.dataTransfer.files[0]);
  });
  $("#sample-button").addEventListener("click", uploadSample);
  $("#empty-sample").addEventListener("click", async () => {
    const params = state();
    params.set("view", "upload");
    history.pushState(null, "", `?${params}`);
    showOnly("upload");
    await uploadSample();
  });
  $("#export-csv").addEventListener("click", () => exportAs("csv"));
  $("#export-ndjson").addEventListener("click", () => exportAs("ndjson"));
  $("#detail-close").addEventListener("click", closeGame);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !$("#detail").hidden) closeGame(); });
  $("#copy-curl").addEventListener("click", () => {
    if (!lastCall) return;
    const curl = curlOf(lastCall);
    navigator.clipboard?.writeText(curl).catch(() => {});
    $("#copy-curl").dataset.copied = curl;
    showMessage(`Copied: ${curl}`);
  });
  window.addEventListener("popstate", render);
  render();
});
