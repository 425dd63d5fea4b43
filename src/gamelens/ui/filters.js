// The filter form, generated from /schema; it always shows what the URL says.

import { getSideJson } from "./api.js";
import { $, el } from "./dom.js";
import { hint, label, OPS, quoteValue, splitValues } from "./format.js";
import { CONTROL, filterParams, go, page, state } from "./state.js";

export function filterField(col) {
  const id = `f-${col.name}`;
  if (col.values) {  // a bucket of fixed values (price bands): one of them, or any
    return el("select", { id, name: col.name, "data-choice": "1" },
      el("option", { value: "" }, "any"), ...col.values.map((v) => el("option", { value: v }, v)));
  }
  if (col.type === "string" || col.type === "list") {
    const input = el("input", { type: "search", id, name: col.name,
      placeholder: col.type === "list" ? "an element contains; a, b: both" : "contains", list: col.type === "list" ? `${id}-values` : null,
      "data-list": col.type === "list" ? "1" : null });
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
  return el("select", { id, name: col.name, "data-choice": "1" },
    el("option", { value: "" }, "either"), el("option", { value: "true" }, "yes"), el("option", { value: "false" }, "no"));
}
// The form's fields: each column, then the buckets of it that say more than its own field (the release
// year and the price band; a month is a range of release dates already).
function formFields() {
  const fields = [];
  for (const col of page.schema.columns) {
    if (col.type === "raw") continue;
    fields.push(col);
    fields.push(...page.schema.buckets.filter((b) => b.source === col.name && b.type !== "date"));
  }
  return fields;
}
export function buildFilterForm() {
  const form = $("#filters");
  form.replaceChildren();
  for (const col of formFields()) {
    const title = el("span", {}, label(col.name), col.derived ? el("span", { class: "derived-mark", title: hint(col) }, " ƒ") : "");
    form.append(el("label", { for: `f-${col.name}`, title: hint(col) }, title, filterField(col)));
  }
  form.append(el("span", { class: "actions" },
    el("button", { type: "submit", id: "apply", class: "primary" }, "Filter"),
    el("button", { type: "button", id: "clear", onclick: clearFilters }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = viewSettings(state());
    for (const [k, v] of readFilterForm()) params.append(k, v);
    go(params);
  });
}
// The view's own settings (group, metrics, having, series, A and B...), without its place in the pages.
function viewSettings(params) {
  const kept = new URLSearchParams();
  for (const [k, v] of params) if (CONTROL.has(k) && !["cursor", "offset", "page", "from", "game"].includes(k)) kept.append(k, v);
  return kept;
}
export function clearFilters() {
  go(viewSettings(state()));
}
// The filters (parameter and value) the form shows (fillFilterForm): a link's second name=... or a
// range's second bound is not among them.
let shown = new Set();
const pair = (k, v) => JSON.stringify([k, v]);
function notShown(params) {
  return [...filterParams(params)].filter(([k, v]) => !shown.has(pair(k, v)));
}
// The filters the form says, plus those of the link it cannot show (a range's second bound:
// price__gte and price__lte), which every form that applies filters keeps.
export function readFilterForm() {
  const params = readShownFilters();
  for (const [k, v] of notShown(state())) if (!params.getAll(k).includes(v)) params.append(k, v);
  return params;
}
function readShownFilters() {
  const params = new URLSearchParams();
  for (const input of $("#filters").querySelectorAll("input, select[data-choice]")) {
    if (!input.value) continue;
    if (input.dataset.opFor) {
      const value = input.dataset.percent ? String(Number(input.value) / 100) : input.value;
      params.append(`${input.dataset.opFor}__${$(`#f-${input.dataset.opFor}-op`).value}`, value);
    } else if (input.dataset.list) {
      // "indie, rpg" in a list's box: games with both, one filter each (filters on one column AND);
      // a value in double quotes keeps its commas ("Wise Wizard Games, LLC").
      for (const value of splitValues(input.value)) params.append(input.name, value);
    } else params.append(input.name, input.value);
  }
  return params;
}
// The form always shows what the URL says (after Clear, Back, Forward, or a link).
export function fillFilterForm(params) {
  shown = new Set();
  for (const input of $("#filters").querySelectorAll("input, select[data-choice]")) {
    if (input.dataset.opFor) {
      const col = input.dataset.opFor;
      const op = OPS.map(([k]) => k).find((k) => params.has(`${col}__${k}`) || (k === "exact" && params.has(col)));
      $(`#f-${col}-op`).value = op || "exact";
      const key = op && params.has(`${col}__${op}`) ? `${col}__${op}` : col;
      const value = op ? params.get(key) : "";
      input.value = value && input.dataset.percent ? String(Math.round(Number(value) * 10000) / 100) : value;
      if (input.value) shown.add(pair(key, params.get(key)));
    } else if (input.dataset.list) {
      const values = params.getAll(input.name);
      input.value = values.map(quoteValue).join(", ");
      for (const v of values) if (v) shown.add(pair(input.name, v));
    } else {
      input.value = params.get(input.name) || "";
      if (input.value) shown.add(pair(input.name, input.value));
    }
  }
  const active = [...filterParams(params)].length;
  const hidden = notShown(params).map(([k, v]) => `${k}=${v}`);
  const also = hidden.length ? `; also from the link: ${hidden.join(", ")}` : "";
  $("#filter-count").textContent = active ? `(${active} active${also})` : "";
}
let suggested = null;  // the version looked at (`version=N`, "" for the data served) the suggestions are of
export async function loadSuggestions() {
  const looking = new URLSearchParams(location.search).get("version") || "";
  if (looking === suggested) return;
  const lists = ["genres", "tags", "categories"];
  const q = new URLSearchParams(lists.map((n) => ["facet", n]));
  q.set("limit", "1"); q.set("fields", "app_id"); q.set("facet_size", "100");
  try {
    const body = await getSideJson(`/api/v1/games?${q}`);
    for (const name of lists) $(`#f-${name}-values`)?.replaceChildren(...(body.facets?.[name] || []).map((f) => el("option", { value: f.value })));
    suggested = looking;
  } catch (e) { /* suggestions are a convenience */ }
}
