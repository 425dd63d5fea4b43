// Compare: two segments side by side.

import { getJson, getSideJson } from "../api.js";
import { $, el } from "../dom.js";
import { readFilterForm } from "../filters.js";
import { describe, exactMoney, exactNumber, fmtPercent } from "../format.js";
import { CONTROL, filterParams, go, isCurrent, state } from "../state.js";

// Ready-made pairs of segments for Compare (each a query string of filters).
export const COMPARISONS = [["Free vs paid", "price=0", "price__gt=0"], ["Indie vs not", "genres__has=Indie", "genres__ne=Indie"],
  ["Linux vs not", "linux=true", "linux=false"], ["Since 2020 vs before", "release_date__gte=2020-01-01", "release_date__lt=2020-01-01"]];
export function buildCompareForm() {
  $("#compare-preset").replaceChildren(el("option", { value: "" }, "(the segments in the link)"),
    ...COMPARISONS.map(([text, a, b]) => el("option", { value: `${a}|${b}` }, text)));
  $("#compare-preset").addEventListener("change", () => {
    const [a, b] = $("#compare-preset").value.split("|");
    if (!a) return;
    const params = state();  // the link's filters stay: the pair is compared among those games
    params.set("a", a);
    params.set("b", b);
    go(params);
  });
  for (const side of ["a", "b"]) $(`#compare-${side}`).addEventListener("click", () => {
    const segment = readFilterForm();  // the segment is what the filter form shows
    const params = new URLSearchParams([...state()].filter(([k]) => CONTROL.has(k)));  // its filters are the segment's now
    const [a, b] = pair(params);  // the other side stays what the table shows, and the link says it
    params.set("a", a);
    params.set("b", b);
    params.set(side, segment.toString());
    go(params);
  });
}
// The pair a link asks for: the first ready-made pair (free vs paid) when it names neither side; a side it leaves out is all games
// (a link naming only A compares A with everything, not with a preset's B that the link never named).
function pair(params) {
  if (!params.has("a") && !params.has("b")) return COMPARISONS[0].slice(1);
  return [params.get("a") ?? "", params.get("b") ?? ""];
}
// Two segments side by side: the figures an analyst weighs, from one summary each.
export async function renderCompare(params) {
  const [a, b] = pair(params);
  const match = COMPARISONS.find(([, x, y]) => x === a && y === b);
  $("#compare-preset").value = match ? `${a}|${b}` : "";
  // The link's filters (the form's applied ones) hold for both: "free vs paid" among Indie games.
  const base = filterParams(params);
  const among = (segment) => new URLSearchParams([...base, ...new URLSearchParams(segment)]);
  const [sa, sb] = await Promise.all([getJson(`/api/v1/games/summary?${among(a)}`),
    getSideJson(`/api/v1/games/summary?${among(b)}`)]);
  if (!isCurrent(params)) return;  // another pair was chosen meanwhile: its render draws the table
  $("#compare-among").textContent = [...base].length ? `Both among the games where ${describe(base.toString())}.` : "";
  // Exact figures, as in every table: side by side, compact ones could read as a tie.
  const rows = [["games", "Games", exactNumber], ["share_free", "Free", fmtPercent], ["median_price", "Median price", exactMoney],
    ["median_reviews", "Median reviews", exactNumber], ["avg_rating", "Average rating", fmtPercent],
    ["est_revenue", "Est. revenue", exactMoney]];
  const named = (q) => describe(q) || "all games";
  // A side with no games has no figures but its count (its revenue read $0.00 beside blanks, helper-63).
  const figure = (side, key) => (key === "games" || side.games ? side[key] : null);
  $("#compare-table thead").replaceChildren(el("tr", {}, el("th", {}, ""), el("th", { class: "num" }, `A: ${named(a)}`),
    el("th", { class: "num" }, `B: ${named(b)}`)));
  $("#compare-table tbody").replaceChildren(...rows.map(([key, text, fmt]) => el("tr", { "data-figure": key },
    el("th", {}, text), el("td", { class: "num" }, fmt(figure(sa, key))), el("td", { class: "num" }, fmt(figure(sb, key))))));
  $("#compare-table").dataset.segments = `${a}|${b}`;  // what the table now shows
}
