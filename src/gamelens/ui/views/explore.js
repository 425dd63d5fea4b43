// Explore: rows, the summary of the matching games, a game's own page, exports.

import { api, getJson, getSideJson } from "../api.js";
import { $, el, onActivate, showMessage } from "../dom.js";
import { clearFilters } from "../filters.js";
import { cell, column, fmtMoney, fmtNumber, fmtPercent, hint, isNumeric, label, plural } from "../format.js";
import { filterParams, go, isCurrent, nextSort, page, state } from "../state.js";

export const DEFAULT_FIELDS = ["name", "release_date", "price", "reviews", "rating", "est_owners", "genres"];
export function chosenFields(params) {
  return params.get("fields") ? params.get("fields").split(",").filter((f) => column(f) || f.endsWith("_raw")) : DEFAULT_FIELDS;
}
// The columns in the table's order: the name first (a row starts with what the game is), then the link's.
// An export writes them so too (it wrote the link's order, helper-63).
function shownFields(params) {
  const fields = chosenFields(params);
  return ["name", ...fields.filter((f) => f !== "name")].filter((f) => fields.includes(f));
}
export function buildColumnChooser() {
  const names = page.schema.columns.map((c) => c.name);
  $("#column-list").replaceChildren(...names.map((name) => el("label", { title: hint(column(name)) },
    el("input", { type: "checkbox", value: name }), label(name))));
  $("#column-list").addEventListener("change", () => {
    const chosen = [...$("#column-list").querySelectorAll("input:checked")].map((i) => i.value);
    const params = state();
    params.set("fields", chosen.join(","));
    params.delete("cursor"); params.delete("page"); params.delete("from");
    go(params);
  });
}
export async function renderExplore(params) {
  const fields = chosenFields(params);
  for (const box of $("#column-list").querySelectorAll("input")) box.checked = fields.includes(box.value);
  const shown = shownFields(params);
  const q = new URLSearchParams(params);
  for (const k of ["view", "page", "from", "game"]) q.delete(k);
  q.set("fields", [...new Set([...shown, "app_id"])].join(","));
  if (!q.get("limit")) q.set("limit", "50");
  renderSummary(params);
  const body = await getJson(`/api/v1/games?${q}`);
  if (!isCurrent(params)) return;  // the user moved on meanwhile: the newer render draws
  const sort = params.get("sort") || "";
  $("#results thead").replaceChildren(el("tr", {}, ...shown.map((f, i) => {
    const col = column(f);
    const dir = { [f]: " ▲", [`-${f}`]: " ▼" }[sort] || "";
    const classes = [col?.sortable ? "sortable" : "", i === 0 && f === "name" ? "sticky" : "", isNumeric(col) ? "num" : ""].join(" ").trim();
    return el("th", { class: classes, "data-field": f, title: hint(col), onclick: col?.sortable ? () => sortBy(f) : null,
      tabindex: col?.sortable ? "0" : null, onkeydown: col?.sortable ? onActivate(() => sortBy(f)) : null },
      label(f) + (col?.derived ? " ƒ" : "") + dir);
  })));
  $("#results tbody").replaceChildren(...body.rows.map((row) => el("tr", { "data-app-id": row.app_id, tabindex: "0",
    onclick: () => openGame(row.app_id), onkeydown: onActivate(() => openGame(row.app_id)) },
    ...shown.map((f, i) => el("td", { class: [i === 0 && f === "name" ? "sticky" : "", isNumeric(column(f)) ? "num" : ""].join(" ").trim(),
      title: typeof row[f] === "string" && row[f].length > 40 ? row[f].slice(0, 300) : null }, cell(f, row[f]))))));
  // A cursor page's first row is numbered from `from` in its link (its offset among the matching rows), so
  // a shared link to it counts as the page did; an offset page is numbered from its offset.
  const start = params.get("cursor") ? cursorPageStart(params.get("from"), body) : body.offset;
  $("#total").textContent = plural(body.total, "game");
  $("#total").dataset.total = body.total;
  const numbered = body.rows.length && start !== null;
  $("#page").textContent = numbered ? `${(start + 1).toLocaleString("en-US")}–${(start + body.rows.length).toLocaleString("en-US")}` : "";
  // Pages follow the keyset cursor (fast at any depth); Prev walks back the cursors this tab has seen,
  // and from a shared link (none seen) goes to the rows before by their offset.
  $("#prev").disabled = !params.get("cursor") && !body.offset;
  $("#next").disabled = !body.next_cursor;
  $("#prev").onclick = () => {
    const stack = [...(history.state?.stack || [])];
    const previous = stack.pop();
    const before = start === null ? 0 : Math.max(0, start - body.limit);  // the previous page's offset
    const p = state();
    if (previous) {
      p.set("cursor", previous);
      if (start === null) p.delete("from");  // still unknown
      else p.set("from", String(before));
      go(p, false, { stack });
      return;
    }
    for (const k of ["cursor", "from", "offset"]) p.delete(k);
    if (before) p.set("offset", String(before));
    go(p, false, { stack });
  };
  $("#next").onclick = () => {
    const stack = [...(history.state?.stack || []), params.get("cursor") || ""];
    const p = state();
    p.set("cursor", body.next_cursor);
    if (start === null) p.delete("from");
    else p.set("from", String(start + body.rows.length));
    p.delete("offset");  // the cursor says where the page starts (the API ignores an offset beside it)
    go(p, false, { stack });
  };
  for (const b of document.querySelectorAll("#export-buttons button")) b.disabled = !body.total;
  if (params.get("game")) await showDetail(params.get("game"));
  else $("#detail").hidden = true;
  if (returnFocusTo) $(`#results tr[data-app-id="${CSS.escape(returnFocusTo)}"]`)?.focus();
  returnFocusTo = null;
}
// A cursor page's `from` as its link gives it: a whole number that fits the rows, else unknown (null): a
// link from an earlier release, or one edited by hand, is shown without row numbers rather than wrong ones.
function cursorPageStart(from, body) {
  if (!/^\d{1,9}$/.test(from || "")) return null;
  const start = Number(from);
  return start + body.rows.length <= body.total ? start : null;
}
// A header's first click sorts numbers and dates largest first (the best rated, the newest) and text A to Z;
// the next click turns the order round.
export function sortBy(field) {
  const params = state();
  const col = column(field);
  params.set("sort", nextSort(params.get("sort"), field, isNumeric(col) || col?.type === "date"));
  params.delete("cursor"); params.delete("offset"); params.delete("page"); params.delete("from");
  go(params);
}
// A game's own page: part of the URL (shareable; Back closes it), closed by Esc or Close, which give
// the focus back to its row.
export function openGame(appId) {
  const params = state();
  params.set("game", appId);
  go(params, false, history.state);  // the cursors this tab followed (Prev's way back) stay
}
let returnFocusTo = null;  // the row a closed game's page gives the focus back to, once re-drawn
export function closeGame() {
  const params = state();
  returnFocusTo = params.get("game");
  params.delete("game");
  go(params, false, history.state);
}
export async function showDetail(appId) {
  // A link's game that is not one: said in a message; the rows it came with stay usable.
  if (!/^\d{1,10}$/.test(appId) || Number(appId) > 4294967295) {
    showMessage(`There is no game "${appId}": game= takes a game's app_id, a whole number (e.g. game=20200).`, "error");
    $("#detail").hidden = true;
    return;
  }
  let game;
  try {
    game = await getJson(`/api/v1/games/${encodeURIComponent(appId)}`);
  } catch (e) {
    if (e.code !== "not_found") throw e;
    showMessage(e.message, "error");
    $("#detail").hidden = true;
    return;
  }
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
const PHONE = "(max-width: 520px)";  // as app.css's narrowest layout
export async function renderSummary(params) {
  const box = $("#summary");
  try {
    const s = await getSideJson(`/api/v1/games/summary?${filterParams(params)}`);
    if (!isCurrent(params)) return;  // the user moved on meanwhile: the newer render draws
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
    const lists = [
      list("Price bands", s.price_bands.map((b) => [b.band, plural(b.games, "game")])),
      list("Top tags", s.top_tags.slice(0, 5).map((t) => [t.value, `(${fmtNumber(t.games)})`])),
      list("Top genres", s.top_genres.slice(0, 5).map((t) => [t.value, `(${fmtNumber(t.games)})`])),
      list("Best rated", s.top_rated.slice(0, 5).map((g) => [g.name, fmtPercent(g.rating)])),
      list("Most reviewed", s.most_reviewed.slice(0, 5).map((g) => [g.name, fmtNumber(g.reviews)]))];
    // On a phone the lists fold away (shown on a tap): unfolded they put the first row 1,600 px down.
    const folded = window.matchMedia(PHONE).matches
      ? [el("details", { class: "summary-lists" }, el("summary", {}, "Price bands, top tags, genres and games"), ...lists)]
      : lists;
    box.replaceChildren(
      tile("Games", s.games.toLocaleString("en-US")),
      tile("Free", fmtPercent(s.share_free)),
      tile("Median price", fmtMoney(s.median_price)),
      tile("90th pct. price", fmtMoney(s.p90_price)),
      tile("Median reviews", fmtNumber(s.median_reviews)),
      tile("Average rating", fmtPercent(s.avg_rating), "SteamDB's rating; games without reviews are left out"),
      tile("Est. revenue", fmtMoney(s.est_revenue), s.est_revenue_note),
      ...folded);
  } catch (e) { box.replaceChildren(); }
}
// One button per export format that /schema lists (query/formats.py), for rows and for aggregates.
export function buildExportButtons() {
  const buttons = (prefix, path, query) => page.schema.exports.map((f) => {
    const button = el("button", { type: "button", id: `${prefix}-${f.format}`, title: f.doc }, `Export ${f.label}`);
    button.addEventListener("click", () => exportAs(f.format, path, query()));
    return button;
  });
  $("#export-buttons").replaceChildren(...buttons("export", "/api/v1/games", rowsExportQuery));
  // The aggregate's table as drawn: its query holds the form's defaults (group, sort, top N), not only the link's.
  $("#agg-export-buttons").replaceChildren(...buttons("agg-export", "/api/v1/games/aggregate",
    () => new URLSearchParams($("#agg-table").dataset.query || "")));
  // The trend's table as drawn: a row per series and year.
  $("#trend-export-buttons").replaceChildren(...buttons("trend-export", "/api/v1/games/aggregate",
    () => new URLSearchParams($("#trend-table").dataset.query || "")));
}
// Every row matching the filters, in the page's sort and columns (not just the page shown).
function rowsExportQuery() {
  const params = state();
  for (const k of ["view", "offset", "limit", "cursor", "page", "from", "game"]) params.delete(k);
  params.set("fields", shownFields(params).join(","));  // the columns shown, also when the link names none
  return params;
}
// An export's file name says what it holds, and whose data: gamelens-games-upload2-genres-indie,
// gamelens-aggregate-by-developers-upload2-... (every export was gamelens.csv).
export function exportName(path, params, version) {
  const what = path.endsWith("/aggregate") ? `aggregate-by-${params.get("group_by") || "genres"}` : "games";
  const chosen = ["top", "series"].filter((k) => params.get(k)).map((k) => `${k}-${params.get(k)}`);  // a trend's
  const filters = [...filterParams(params)].map(([k, v]) => `${k}-${v}`);
  // Letters of any script stay (株式会社テスト, Montréal); the rest of a value is an underscore.
  const name = ["gamelens", what, `upload${version}`, ...chosen, ...filters].join("-").replace(/[^\p{L}\p{N}_.-]+/gu, "_");
  return name.slice(0, 150);
}
export async function exportAs(format, path = "/api/v1/games", params = rowsExportQuery()) {
  params.set("format", format);
  let response;
  try {
    response = await api(`${path}?${params}`);
  } catch (e) {  // a filter the server refuses: said where the page says it, not thrown
    showMessage(e.message, "error");
    return;
  }
  const blob = await response.blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: `${exportName(path, params, response.headers.get("X-Dataset-Version"))}.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  const cut = response.headers.get("X-Truncated") === "true";
  showMessage(cut ? `Export cut at ${response.headers.get("X-Exported-Count")} of ${response.headers.get("X-Total-Count")} rows (GAMELENS_EXPORT_MAX_ROWS).`
    : `Exported ${plural(Number(response.headers.get("X-Exported-Count")), "row")}.`, cut ? "error" : "info");
}
