// The one way the page talks to the API: every request goes through api(), which adds the key, turns an
// error body into an Error with its status and code, and records the call: the view's main call is
// shown and copyable as curl; side calls (summary, suggestions, the year chart) are listed under it.

import { $, el, showMessage } from "./dom.js";

let lastCall = null;  // the view's main request: what "Copy as curl" copies
export const key = () => localStorage.getItem("gamelens.key") || "";
export function record(method, path, body, side = false) {
  const call = { method, url: new URL(path, location.origin).href, body };
  if (side) {
    $("#api-side").append(el("li", {}, el("code", {}, `${method} ${call.url}`)));
    return;
  }
  lastCall = call;
  $("#api-url").textContent = `${method} ${call.url}`;
}
export const forgetSideCalls = () => $("#api-side").replaceChildren();
// A read of games is of the stored version the page looks at (`version=N` in its URL), if any.
function ofVersion(path) {
  const looking = new URLSearchParams(location.search).get("version");
  if (!looking || !path.startsWith("/api/v1/games")) return path;
  const url = new URL(path, location.origin);
  url.searchParams.set("version", looking);
  return url.pathname + url.search;
}
export async function api(reading, options = {}) {
  const path = ofVersion(reading);
  const method = options.method || "GET";
  record(method, path, options.show, options.side);
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
  const version = response.headers.get("X-Dataset-Version");  // an answer's own, whenever it arrives
  if (version) noteVersion(version, new URL(path, location.origin).searchParams.has("version"));
  return response;
}
let servedSeen = null;  // the upload served when the page last read it: a switch, by anyone, is said once
// Which upload's data the views read (every answer's X-Dataset-Version), in the header.
function noteVersion(version, looking) {
  $("#data-version").textContent = looking ? `Data: upload ${version}, looked at` : `Data: upload ${version}`;
  if (looking) return;
  if (servedSeen !== null && servedSeen !== version) showMessage(`The data served is now upload ${version} (it was upload ${servedSeen}).`);
  servedSeen = version;
}
// This page served upload `id` itself and said so: its next answers do not announce the switch again.
export const servedBySelf = (id) => { servedSeen = String(id); };
export const getJson = async (path) => (await api(path)).json();
// A request beside the view's main one: listed, not what "Copy as curl" copies.
export const getSideJson = async (path) => (await api(path, { side: true })).json();
export const lastCallMade = () => lastCall;
export function curlOf(call) {
  const parts = ["curl"];
  if (call.method !== "GET") parts.push(`-X ${call.method}`);
  parts.push('-H "Authorization: Bearer $GAMELENS_KEY"');
  if (call.body?.json) parts.push("-H 'Content-Type: application/json'", `-d '${call.body.json.replaceAll("'", "'\\''")}'`);
  if (call.body?.file) parts.push(`-F 'file=@${call.body.file.replaceAll("'", "'\\''")}'`);
  parts.push(`'${call.url}'`);
  return parts.join(" ");
}
