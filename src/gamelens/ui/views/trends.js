// Trends: a metric per release year for the top N (or chosen) values of a list column.

import { getJson } from "../api.js";
import { isWhole, lineChart, yearRange } from "../charts.js";
import { $, el, showMessage } from "../dom.js";
import { readFilterForm } from "../filters.js";
import { cell, datesAsDays, formatterFor, label, quoteValue, splitValues, unitOf } from "../format.js";
import { filterParams, go, isCurrent } from "../state.js";

export const TREND_DIMS = ["genres", "tags", "categories", "developers", "publishers"];
export const TREND_METRICS = [["count", "Games"], ["growth", "Growth in games vs the year before"],
  ["median:price", "Median price"], ["avg:rating", "Average rating"], ["share(rating__gte=0.8)", "Share rated 80%+"],
  ["share(linux=true)", "Share on Linux"], ["share(price=0)", "Share free"], ["sum:est_revenue", "Estimated revenue"],
  ["median:reviews", "Median reviews"]];
export function buildTrendForm() {
  $("#trend-dim").replaceChildren(el("option", { value: "" }, "all matching games"), ...TREND_DIMS.map((d) => el("option", { value: d }, label(d))));
  $("#trend-metric").replaceChildren(...TREND_METRICS.map(([v, text]) => el("option", { value: v }, text)));
  $("#trend-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = readFilterForm();  // the filters the form shows, applied or not yet
    params.set("view", "trends");
    const dim = $("#trend-dim").value;
    params.set("group_by", dim ? `${dim},release_year` : "release_year");
    params.set("metrics", $("#trend-metric").value);
    const chosen = splitValues($("#trend-series").value).map((v) => asListed(dim, v));
    if (dim && chosen.length) params.set("series", chosen.map(quoteValue).join(","));  // these series, not the top N
    else if (dim) params.set("top", $("#trend-n").value || "8");
    go(params);
  });
  // "all matching games" has no series to choose: the boxes follow the choice at once, not at Show.
  $("#trend-dim").addEventListener("change", () => {
    $("#trend-n").disabled = !$("#trend-dim").value;
    $("#trend-series").disabled = !$("#trend-dim").value;
  });
}
// The API matches chosen series in any case; the link reads as the data writes them ("Indie") where the
// filter form suggests the value (the 100 most common genres, tags and categories).
function asListed(dim, typed) {
  const known = [...document.querySelectorAll(`#f-${dim}-values option`)].map((o) => o.value);
  return known.find((k) => k.toLowerCase() === typed.toLowerCase()) || typed;
}
export async function renderTrends(params) {
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
  if (!isCurrent(params)) return;  // the user moved on meanwhile: the newer render draws
  const alias = body.metrics[0];
  const rows = body.rows.filter((r) => r.release_year !== null);
  const typed = splitValues(chosen);
  let names = ["all matching games"];
  if (dim && chosen) names = [...new Set(typed.flatMap((n) => spelledAs(rows, dim, n)))];
  else if (dim) names = body.series || [];
  const series = names.map((name) => {
    const mine = rows.filter((r) => !dim || r[dim] === name);
    return { name, points: new Map(mine.map((r) => [r.release_year, r[alias]])), n: new Map(mine.map((r) => [r.release_year, r.count])) };
  });
  const metricName = TREND_METRICS.find(([v]) => v === metric)?.[1] || label(alias);
  // Top N are the N with the most games, whatever the metric drawn: the caption says so.
  const which = chosen ? `chosen ${names.length} ${label(dim)}` : `top ${names.length} ${label(dim)} by games`;
  $("#trend-caption").textContent = `${metricName} per release year${dim ? `, ${which}` : ""}`;
  const missing = typed.filter((n) => !spelledAs(rows, dim, n).length);
  // each value quoted: `fuzz, Inc.` typed without quotes is two values, "fuzz" and "Inc."
  if (missing.length) showMessage(`No games under these filters for ${label(dim)} ${missing.map((n) => `"${n}"`).join(", ")}.`, "error");
  // Counts and sums are 0 in a year without games; medians, averages and shares have no value there.
  const additive = /^(count|sum_)/.test(alias);
  const years = yearRange(rows.map((r) => r.release_year));
  if (unitOf(alias) === "date") {  // the earliest or latest release per year: lines along time
    const dates = datesAsDays(rows.map((r) => r[alias]));
    const drawn = series.map((s) => ({ ...s, points: new Map([...s.points].filter(([, v]) => v).map(([y, v]) => [y, dates.days(v)])) }));
    lineChart($("#trend-chart"), $("#trend-legend"), drawn, years, false, dates.fmt, true);
  } else {
    lineChart($("#trend-chart"), $("#trend-legend"), series, years, additive, formatterFor(alias), isWhole(alias));
  }
  $("#trend-table thead").replaceChildren(el("tr", {}, el("th", {}, "year"), ...names.map((n) => el("th", { class: "num" }, String(n)))));
  $("#trend-table tbody").replaceChildren(...years.map((y) => el("tr", {}, el("td", {}, String(y)),
    ...series.map((s) => el("td", { class: "num" }, trendCell(s, y, alias, additive))))));
  $("#trend-table").dataset.query = shownQuery(q, dim, names).toString();
  for (const b of document.querySelectorAll("#trend-export-buttons button")) b.disabled = false;  // after a refused link
}
// What the table shows, as a query for its export: its series by name, in its order (the API answers
// chosen series in the order given). Games without a release year are exported too, in rows without a year.
function shownQuery(q, dim, names) {
  const shown = new URLSearchParams(q);
  if (dim) {
    shown.delete("top");
    shown.delete("sort");
    shown.set("series", names.map(quoteValue).join(","));
  }
  return shown;
}
// A chosen series as the rows spell it: `typed` in any case (the data may spell a value more than one way).
function spelledAs(rows, dim, typed) {
  return [...new Set(rows.map((r) => r[dim]).filter((v) => String(v).toLowerCase() === typed.toLowerCase()))];
}
// A year without games: 0 for counts and sums, blank for medians, averages and shares.
export function trendCell(s, year, alias, additive) {
  if (s.points.has(year)) return cell(alias, s.points.get(year));
  return additive ? "0" : "";
}
