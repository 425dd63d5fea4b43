// Plain SVG charts, drawn to the width they get (their text keeps its size on a phone).

import { el, svg } from "./dom.js";
import { fmtNumber, plural, unitOf } from "./format.js";

// Ten series colours, each pair at least 30 apart (CIE76 ΔE): the eighth was a teal (#00838f) 19 from the third.
export const PALETTE = ["#2456c7", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#5b8c2a", "#c2185b", "#ff80ab", "#6d4c41", "#546e7a"];
export function yearRange(values) {
  if (!values.length) return [];
  const lo = Math.min(...values), hi = Math.max(...values);
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}
// The top of an axis with `intervals` gridlines: a round number, and for whole things (counts) one
// whose every tick is whole (0, 3, 6, not 2.5).
// An axis's end: the first of these multiples of the largest value's power of ten that holds it, so the
// longest bar fills most of the width ($10.9M: an axis to $12M, not $20M).
const NICE = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
export function niceMax(max, intervals, whole) {
  if (max <= 0) return whole ? intervals : 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  const top = NICE.map((m) => Number((m * magnitude).toPrecision(12))).find((t) => t >= max * (1 - 1e-9));  // 1.1e2, not 110.00000000000001
  return whole ? Math.ceil(top / intervals) * intervals : top;
}
export const isWhole = (name) => unitOf(name) === "count";
const known = (v) => v !== null && v !== undefined;
// A line chart's value axis: [bottom, top, ticks]. From 0 to a round top in four steps, as before, unless a
// value is below 0 (a growth that fell): then round steps from below the lowest to above the highest,
// through 0. The growth chart ran from 0 % up, and a year at -5.6 % was drawn off the chart.
function axisOf(lo, hi, whole) {
  if (lo >= 0) {
    const top = niceMax(hi, 4, whole);
    return [0, top, [0, 0.25, 0.5, 0.75, 1].map((t) => top * t)];
  }
  const step = niceMax((hi - lo) / 4, 1, whole);
  const first = Math.floor(lo / step), last = Math.max(1, Math.ceil(hi / step));  // in steps; 0 is a tick
  const ticks = Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toPrecision(12)));
  return [ticks[0], ticks[ticks.length - 1], ticks];
}
// Charts are drawn to the width they get, so that their text stays at its size on a phone.
export const widthOf = (target, fallback) => Math.round(target.getBoundingClientRect().width) || fallback;
export function barChart(target, data, fmt, whole) {
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
export function yearChart(target, points) {
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
export function lineChart(target, legend, series, years, additive, fmt, whole) {
  target.replaceChildren();
  legend.replaceChildren();
  const left = 56, bottom = 22, height = 260, width = widthOf(target, 760), plot = width - left - 14;
  const values = series.flatMap((s) => [...s.points.values()]).filter(known).map(Number);
  const [low, top, ticks] = axisOf(Math.min(0, ...values), Math.max(0, ...values), whole);
  target.setAttribute("viewBox", `0 0 ${width} ${height + bottom}`);
  const y = (v) => height - ((Number(v) - low) / (top - low)) * (height - 10);
  for (const tick of ticks) {
    target.append(svg("line", { x1: left, x2: width - 14, y1: y(tick), y2: y(tick), class: tick === 0 && low < 0 ? "axis" : "grid-line" }),
      svg("text", { x: left - 5, y: y(tick) + 4, class: "muted", "text-anchor": "end" }, fmt(tick)));
  }
  const x = (year) => left + (years.length > 1 ? ((year - years[0]) / (years.length - 1)) * plot : plot / 2);
  const every = Math.ceil(years.length / Math.max(3, Math.floor(plot / 45)));
  years.forEach((year, i) => {
    if (i % every === 0) target.append(svg("text", { x: x(year), y: height + 15, class: "muted", "text-anchor": "middle" }, String(year)));
  });
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    let path = "", pen = "M";
    for (const year of years) {
      const has = known(s.points.get(year));  // a median or a growth may have no value in a year
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
