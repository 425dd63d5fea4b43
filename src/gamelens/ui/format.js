// Numbers and words, formatted by the unit hints /schema gives each column, bucket and metric.

import { page } from "./state.js";

// One decimal or three significant digits, whichever says more: $1.04M for $1,038,254 (one decimal alone
// said $1M, 4 % off), $187.5M for an axis's $187,500,000 (three digits alone said $188M).
export const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1,
  maximumSignificantDigits: 3, roundingPriority: "morePrecision" });
export const plural = (n, word) => `${Number(n).toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
export function fmtNumber(v) {
  if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
  const a = Math.abs(v);
  if (Number.isInteger(v)) return a >= 1e6 ? COMPACT.format(v) : v.toLocaleString("en-US");
  let digits = 3; // fewer decimals as numbers grow
  if (a >= 100) digits = 0;
  else if (a >= 1) digits = 2;
  return v.toLocaleString("en-US", { maximumFractionDigits: digits });
}
export const fmtPercent = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "");
// Dollars and cents under a thousand, compact above ($5.8K, $186.2K): one style in a column.
export function fmtMoney(v) {
  if (typeof v !== "number") return "";
  return Math.abs(v) >= 1000 ? `$${COMPACT.format(v)}` : `$${v.toFixed(2)}`;
}
export const fmtLabel = (v) => (v === null || v === undefined ? "" : String(v));  // ids and years: 2008, not 2,008
export const FORMATS = { id: fmtLabel, year: fmtLabel, month: fmtLabel, date: fmtLabel, money: fmtMoney, percent: fmtPercent };
// The unit /schema gives a column, a bucket or a metric's output (count, fn_column, share_...).
export function unitOf(name) {
  const col = page.schema.columns.find((c) => c.name === name);
  if (col) return col.unit;
  const bucket = page.schema.buckets.find((b) => b.name === name);
  if (bucket) return bucket.unit;
  const fn = page.schema.metrics.find((m) => name === m.name || name.startsWith(`${m.name}_`));
  if (!fn) return null;
  if (fn.unit) return fn.unit;
  return unitOf(name.slice(fn.name.length + 1));  // sum_price is in the unit of price
}
export const formatterFor = (name) => FORMATS[unitOf(name)] || fmtNumber;
// A table's cell. Its figures are exact, not compact: two studios at $9,044,079.90 and $9,040,151.40 both
// read $9.04M, a tie that is not one (charts and the summary's tiles stay compact). Money keeps its cents.
export function cell(name, value) {
  if (Array.isArray(value)) return value.join(" · ");  // not ", ": studio names hold commas ("Wise Wizard Games, LLC")
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (value === null || value === undefined) return "";
  return typeof value === "number" ? exactFigure(name, value) : String(value);
}
function exactFigure(name, v) {
  const unit = unitOf(name);
  if (unit === "money") return exactMoney(v);
  if (!FORMATS[unit]) return exactNumber(v);  // counts, owners
  return formatterFor(name)(v);
}
export const exactMoney = (v) => (typeof v === "number"
  ? `$${v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}` : "");
export const exactNumber = (v) => (Number.isInteger(v) ? v.toLocaleString("en-US") : fmtNumber(v));
export const column = (name) => page.schema.columns.find((c) => c.name === name);
export const label = (name) => name.replaceAll("_", " ");
export const hint = (col) => (col && col.formula ? `${col.doc}\n= ${col.formula}${col.source ? `\nSource: ${col.source}` : ""}` : col?.doc);
export const isNumeric = (col) => col && ["number", "decimal", "float"].includes(col.type);
export const isBucket = (name) => page.schema.buckets.some((b) => b.name === name);
// Filters as an analyst reads them: "price > 0, genres has Indie" (not "price gt=0").
// The comparison operators the filter form offers, with their symbols.
export const OPS = [["exact", "="], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["ne", "≠"]];
const SYMBOLS = { ...Object.fromEntries(OPS), startswith: "starts with", isnull: "is empty:" };
function describeOne(key, value) {
  const [name, given] = key.split("__");
  const op = given || column(name)?.default_operator || "exact";
  return `${label(name)} ${SYMBOLS[op] || op} ${value}`;
}
export function describe(query) {
  return [...new URLSearchParams(query)].map(([key, value]) => describeOne(key, value)).join(", ");
}
// A metric's heading: a share names its filter in full ("share: price ≥ 10"), which its API name
// (share_price_gte) leaves out; the others read as their name ("median price"). A share's filter is
// written as the API reads it, not as a query string: "C++" stays "C++".
export function metricHeading(spec, alias) {
  const share = /^share\(([^=]+)=(.*)\)$/.exec(spec);
  return share ? `share: ${describeOne(share[1], share[2])}` : label(alias);
}
// Dates as days since a little before the earliest of them, and back as dates: a chart of the earliest
// or latest release per group, whose bars or lines from 1970 would all look alike.
const DAY = 86400000;
export function datesAsDays(values) {
  const known = values.filter(Boolean).map((v) => Date.parse(v) / DAY);
  if (!known.length) return { days: () => null, fmt: () => "" };
  const earliest = Math.min(...known);
  const origin = earliest - Math.max(30, Math.round((Math.max(...known) - earliest) * 0.05));
  return {
    days: (v) => (v ? Date.parse(v) / DAY - origin : null),
    fmt: (d) => (d === null || d === undefined ? "" : new Date((origin + d) * DAY).toISOString().slice(0, 10)),
  };
}
// A comma-separated list of values as the API reads one (query/filters.value_list): a value in double
// quotes may hold commas ("Wise Wizard Games, LLC") and spaces at its ends, "" is a quote within it;
// unquoted values are trimmed.
export function splitValues(text) {
  const values = [];
  let value = "", quoted = false, wasQuoted = false;
  const end = () => { values.push(wasQuoted ? value : value.trim()); value = ""; wasQuoted = false; };
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') { value += '"'; i += 1; }
    else if (quoted && c === '"') quoted = false;
    else if (c === '"' && !quoted && !wasQuoted && !value.trim()) { quoted = true; wasQuoted = true; value = ""; }
    else if (c === "," && !quoted) end();
    else if (quoted || !wasQuoted || c.trim()) value += c;  // after a closing quote, spaces are not the value's
  }
  end();
  return values.filter((v) => v !== "");
}
// A value written into such a list: quoted when it holds a comma or a quote, or starts or ends with a space.
export const quoteValue = (v) => (/[",]|^\s|\s$/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
