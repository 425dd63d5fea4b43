// Aggregate: any group and metrics, as a chart and a table.

import { getJson, getSideJson } from "../api.js";
import { barChart, isWhole, yearChart } from "../charts.js";
import { $, el, onActivate } from "../dom.js";
import { readFilterForm } from "../filters.js";
import { cell, datesAsDays, formatterFor, isBucket, label, metricHeading, plural, unitOf } from "../format.js";
import { filterParams, go, isCurrent, nextSort, page, state } from "../state.js";

export const SHARE_80 = "share(rating__gte=0.8)";
// Shares offered in the menus (any other share(...) from a link is shown as written).
export const SHARES = [[SHARE_80, "share rated 80%+"], ["share(linux=true)", "share on Linux"],
  ["share(mac=true)", "share on Mac"], ["share(price=0)", "share free"]];
// Metrics the aggregate table can add beside the chart's one.
export const EXTRAS = [["median:price", "median price"], ["avg:rating", "average rating"], [SHARE_80, "share rated 80%+"],
  ["sum:est_revenue", "est. revenue"], ["median:reviews", "median reviews"], ["share(linux=true)", "share on Linux"]];
// The output name the API gives a metric, by the alias templates /schema publishes.
export function aliasOf(metric) {
  const share = /^share\((\w+?)(?:__(\w+))?=/.exec(metric);
  const [fn, column = ""] = metric.split(":");
  const doc = page.schema.metrics.find((m) => m.name === (share ? "share" : fn));
  if (!doc) return metric;  // not a metric /schema knows: the API will say so
  if (share) return doc.alias.replace("{column}", share[1]).replace("{operator}", share[2] || doc.alias_no_operator);
  return doc.alias.replace("{name}", fn).replace("{column}", column);
}
// The chart's metric: `chart=` when the link names one of its metrics (count beside other metrics, which
// the rule below would pass over), else the first metric that is not count (links before `chart=`).
export function measureOf(metricsParam, chart = null) {
  const listed = metricsParam.split(/,(?![^(]*\))/);
  if (chart && listed.includes(chart)) return chart;
  return listed.find((m) => m !== "count") || "count";
}
export function buildAggregateForm() {
  const groups = [...page.schema.columns.filter((c) => c.groupable).map((c) => c.name), ...page.schema.buckets.map((b) => b.name)];
  $("#agg-group").replaceChildren(...groups.map((g) => el("option", { value: g }, label(g))));
  const metrics = [...page.schema.metrics.filter((m) => !["share", "growth"].includes(m.name)).map((m) => [m.name, m.name]), ...SHARES];
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
    if (metric === "count" && extras.length) params.set("chart", "count");  // else the first extra is charted
    if ($("#agg-min").value) params.set("having", `count__gte:${$("#agg-min").value}`);
    params.set("limit", $("#agg-limit").value || "20");
    go(params);
  });
}
export function columnsForMetric() {
  const metric = page.schema.metrics.find((m) => m.name === $("#agg-metric").value);
  const columns = metric ? metric.columns : [];
  $("#agg-column").replaceChildren(...columns.map((c) => el("option", { value: c }, label(c))));
  $("#agg-column").disabled = columns.length === 0;
  $("#agg-column").closest("label").hidden = columns.length === 0;  // count and shares take no column
}
let opened = null;  // the row whose games were opened last: {from: the aggregate's link, row: its place}
export async function renderAggregate(params) {
  const group = (params.get("group_by") || "genres").split(",")[0];
  const metrics = params.get("metrics") || "count";
  const limit = params.get("limit") || "20";
  const measure = measureOf(metrics, params.get("chart"));
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
  // A link's metric the menu does not offer is added to it, so that the form's Show keeps it.
  const offered = [...$("#agg-extra").options].map((o) => o.value);
  for (const m of listed) if (m !== "count" && !offered.includes(m)) $("#agg-extra").append(el("option", { value: m }, m));
  for (const option of $("#agg-extra").options) option.selected = listed.includes(option.value) && option.value !== measure;
  const having = /^count__gte:(\d+)$/.exec(params.get("having") || "");
  $("#agg-min").value = having ? having[1] : "";
  const q = filterParams(params);
  q.set("group_by", group); q.set("metrics", metrics); q.set("limit", limit);
  if (params.get("having")) q.set("having", params.get("having"));
  const offset = Number(params.get("offset")) || 0;
  if (offset > 0) q.set("offset", String(offset));
  // Bars of a measure in its order, or a bucket (years, price bands) in its natural order.
  q.set("sort", params.get("sort") || (isBucket(group) ? group : `-${aliasOf(measure)}`));
  const body = await getJson(`/api/v1/games/aggregate?${q}`);
  if (!isCurrent(params)) return;  // the user moved on meanwhile: the newer render draws
  const alias = aliasOf(measure);  // the chart's measure; the table shows every metric
  $("#agg-table").dataset.query = q.toString();
  for (const b of document.querySelectorAll("#agg-export-buttons button")) b.disabled = false;  // after a refused link
  const names = [...body.group_by, ...body.metrics];
  // The API answers a metric per distinct one asked for, in the order asked.
  const asked = [...new Set(listed)];
  const groups = body.group_by.length;
  const heading = (n, i) => (i < groups || asked.length !== body.metrics.length ? label(n) : headingOf(asked[i - groups], n));
  const sorted = q.get("sort");
  const arrow = (n) => ({ [n]: " ▲", [`-${n}`]: " ▼" }[sorted.split(",")[0]] || "");  // the first key's
  $("#agg-table thead").replaceChildren(el("tr", {}, ...names.map((n, i) => el("th", {
    class: i >= groups ? "num sortable" : "sortable", title: n, "data-field": n, tabindex: "0",
    onclick: () => sortGroupsBy(n, i >= groups), onkeydown: onActivate(() => sortGroupsBy(n, i >= groups)),
  }, heading(n, i) + arrow(n)))));
  $("#agg-table tbody").replaceChildren(...body.rows.map((r, row) => {
    const games = gamesOf(params, group, r[group]);
    const drill = () => { opened = { from: params.toString(), row }; go(games); };
    const open = games ? { class: "drill", tabindex: "0", title: "Show these games", onclick: drill,
      onkeydown: onActivate(drill) } : {};
    return el("tr", open, ...names.map((n, i) =>
      el("td", { class: i >= body.group_by.length ? "num" : "" }, n === group && r[n] === null ? "(none)" : cell(n, r[n]))));
  }));
  // Back from a group's games: the focus is on the row that opened them, not on the page's top.
  if (opened?.from === params.toString()) $(`#agg-table tbody tr:nth-child(${opened.row + 1})`)?.focus();
  opened = null;
  $("#agg-caption").textContent = `${headingOf(measure, alias)} by ${label(group)}: ${chosen(body, sorted, asked)}`;
  pageGroups(params, body);
  const bars = body.rows.map((r) => [r[group] === null ? "(none)" : cell(group, r[group]), r[alias]]);
  if (unitOf(alias) === "date") {  // the earliest or latest release of each group: bars along time
    const dates = datesAsDays(bars.map(([, v]) => v));
    barChart($("#agg-chart"), bars.map(([name, v]) => [name, dates.days(v)]), dates.fmt, true);
  } else {
    barChart($("#agg-chart"), bars, formatterFor(alias), isWhole(alias));
  }
  const years = filterParams(params);
  years.set("group_by", "release_year"); years.set("sort", "release_year"); years.set("limit", "500");
  const byYear = await getSideJson(`/api/v1/games/aggregate?${years}`);
  if (!isCurrent(params)) return;
  yearChart($("#year-chart"), (byYear.rows || []).filter((r) => r.release_year !== null).map((r) => [r.release_year, r.count]));
}
// A group's games in Explore: the aggregate's filters and the group's own (an element of a list, a value,
// a bucket's value: release_year=2020, price_band=free; "(none)" by __isnull).
export function gamesOf(params, group, value) {
  const q = filterParams(params);
  q.set("view", "explore");
  const col = page.schema.columns.find((c) => c.name === group);
  if (value === "") return null;  // an empty name: no link can say "equals nothing" (empty parameters are dropped)
  if (col?.type !== "list") {
    // The group's one value meets every filter on its column (release_year__gte=2015 for 2016): they go, and
    // the form shows the value (a hidden "≥ 2015" left beside it made the next year typed find nothing).
    for (const k of [...q.keys()]) if (k.split("__")[0] === group) q.delete(k);
  }
  if (value === null) q.append(`${group}__isnull`, "true");
  else if (col?.type === "list") q.append(`${group}__has`, value);
  else if (col?.type === "string") q.append(`${group}__exact`, value);
  else q.append(group, String(value));
  return q;
}
// The groups after or before these: the table showed the top N of 62 and had no way to the rest.
function pageGroups(params, body) {
  const step = (offset) => () => {
    const next = state();
    if (offset > 0) next.set("offset", String(offset));
    else next.delete("offset");
    go(next);
  };
  const shown = body.rows.length;
  $("#agg-page").textContent = shown ? `${body.offset + 1}–${body.offset + shown} of ${body.total_groups}` : "";
  $("#agg-prev").disabled = body.offset === 0;
  $("#agg-next").disabled = !body.next;
  $("#agg-prev").onclick = step(Math.max(0, body.offset - body.limit));
  $("#agg-next").onclick = step(body.offset + body.limit);
}
// Which groups the table holds, as its sort chose them: a click on a heading picks other groups (the first
// 15 developers by name, not the 15 with the most revenue), and the caption says so.
function chosen(body, sort, asked) {
  const total = plural(body.total_groups, "group");
  sort = sort.split(",")[0];  // the first key chose the groups
  const desc = sort.startsWith("-");
  const range = `${body.offset + 1}–${body.offset + body.rows.length}`;
  if (body.offset > 0 && !body.rows.length) return `no groups after the first ${body.total_groups}`;
  if (body.offset > 0) return `groups ${range} of ${body.total_groups} by ${sortLabel(body, sort, asked)}${desc ? ", descending" : ""}`;
  const name = sort.replace(/^-/, "");
  const at = body.metrics.indexOf(name);
  if (at < 0) {  // by a group's own values
    const order = `by ${label(name)}${desc ? ", descending" : ""}`;
    return body.rows.length >= body.total_groups ? `${total}, ${order}` : `the first ${body.rows.length} of ${total} ${order}`;
  }
  const heading = sortLabel(body, sort, asked);
  if (body.rows.length >= body.total_groups) return `${total}, by ${heading}${desc ? ", largest first" : ", smallest first"}`;
  return `the ${desc ? "top" : "bottom"} ${body.rows.length} of ${total} by ${heading}`;
}
// The heading of the column the groups are sorted by.
function sortLabel(body, sort, asked) {
  const name = sort.replace(/^-/, "");
  const at = body.metrics.indexOf(name);
  if (at < 0 || asked.length !== body.metrics.length) return label(name);
  return headingOf(asked[at], name);
}
// A metric's heading: a share the menus offer reads as they name it ("share rated 80%+").
const headingOf = (spec, alias) => SHARES.find(([v]) => v === spec)?.[1] || metricHeading(spec, alias);
// A click on a heading sorts the groups by it: a metric largest first, a group in its order; a second
// click turns the order round.
function sortGroupsBy(name, isMetric) {
  const params = state();
  params.set("sort", nextSort(params.get("sort"), name, isMetric));
  params.delete("offset");
  go(params);
}
