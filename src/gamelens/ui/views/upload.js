// Upload: a link, a file or the sample; live progress; the history.

import { api, getJson, servedBySelf } from "../api.js";
import { $, el, showMessage } from "../dom.js";
import { plural } from "../format.js";
import { go, state, viewOf } from "../state.js";

let pollTimer = null;
export async function startUpload(request) {
  $("#upload-result").replaceChildren();
  showMessage("");  // an earlier upload's error is not this one's
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
// Where an upload is sent: kept and not served when the box says so (activate=false).
const target = (path) => ($("#upload-activate").checked ? path : `${path}?activate=false`);
export const uploadLink = () => startUpload(() => {
  const body = JSON.stringify({ url: $("#upload-url").value.trim() });
  return api(target("/api/v1/uploads"), { method: "POST", headers: { "Content-Type": "application/json" }, body, show: { json: body } });
});
export const uploadFile = (file) => startUpload(() => {
  const form = new FormData();
  form.append("file", file);
  return api(target("/api/v1/uploads"), { method: "POST", body: form, show: { file: file.name } });
});
export const uploadSample = () => startUpload(() => api(target("/api/v1/uploads/sample"), { method: "POST" }));
export function showProgress(rec) {
  const bar = $("#upload-bar");
  if (rec.state === "downloading" && rec.bytes_expected) bar.value = Math.round(90 * rec.bytes_received / rec.bytes_expected);
  else if (rec.state === "loading") bar.value = 95;
  else if (rec.state === "succeeded") bar.value = 100;
  const mb = (rec.bytes_received / 1e6).toFixed(1);
  const words = { succeeded: `done: ${plural(rec.rows_loaded, "row")} loaded`, loading: `loading rows (${mb} MB received)` };
  $("#upload-state").textContent = words[rec.state] || `${rec.state} ${mb} MB`;
  $("#upload-state").dataset.state = rec.state;
}
export function showResult(rec) {
  const out = [];
  const stored = `Upload ${rec.id}: ${plural(rec.rows_loaded, "row")} stored` + (rec.rows_rejected ? `, ${rec.rows_rejected} rejected` : "");
  if (rec.state === "succeeded" && rec.stored && !rec.active && rec.activate === false) {
    out.push(el("p", { class: "ok" }, `${stored}, kept and not served yet. `, lookButton(rec.id), " ",
      el("button", { type: "button", id: "activate-new", onclick: () => activate(rec.id, `Upload ${rec.id} is active.`) }, "Activate it")));
  } else if (rec.state === "succeeded") {
    out.push(el("p", { class: "ok" }, `${stored}. `, el("a", { href: "?view=explore" }, "Explore them")));
  } else out.push(el("p", { class: "error" }, `Upload ${rec.id} ${rec.state}: ${rec.error?.message || ""}`));
  for (const w of rec.warnings || []) out.push(el("p", { class: "warning" }, `Warning: ${w}`));
  if ((rec.rejected_rows || []).length) {
    out.push(el("div", { class: "table-wrap" }, el("table", { class: "grid" },
      el("tr", {}, el("th", {}, "row"), el("th", {}, "column"), el("th", {}, "value"), el("th", {}, "expected")),
      ...rec.rejected_rows.map((r) => el("tr", {}, el("td", {}, r.row), el("td", {}, r.column), el("td", {}, r.value), el("td", {}, r.expected))))));
  }
  $("#upload-result").replaceChildren(...out);
}
// Explore a stored version that is not served: every view reads it (`version=N`) until the note's way back.
const lookButton = (id) => el("button", { type: "button", class: "look", onclick: () => go(new URLSearchParams({ view: "explore", version: id })) },
  "Look at it");
// The browser's own time zone, named: "12/1/2026, 10:15:02 AM UTC".
export const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { timeZoneName: "short" }) : "");
// Serve a kept upload's data (a new one loaded with the box unchecked, or an earlier one).
async function activate(id, message) {
  try {
    await api(`/api/v1/uploads/${id}/activate`, { method: "POST" });
  } catch (e) {  // e.g. 409: its data was dropped meanwhile, or another switch landed
    showMessage(e.message, "error");
    return;
  }
  servedBySelf(id);
  showMessage(message);
  announced = id;
  if ($("#activate-new")) $("#activate-new").parentElement.replaceChildren(`Upload ${id} is served now. `,
    el("a", { href: "?view=explore" }, "Explore it"));
  renderHistory();
}
let announced = null;  // the upload an "… is active" message is about: stale once another is active
let uploadStates = null;  // {running, final}: the server publishes them (GET /api/v1/uploads)
export async function runningStates() {
  if (!uploadStates) uploadStates = (await getJson("/api/v1/uploads")).states;
  return uploadStates.running;
}
// Only while the Upload view is shown: a poll due after the user left it showed its call as another view's.
function pollHistory() {
  if (viewOf(state()) === "upload") renderHistory().catch(() => {});
}
export async function renderHistory() {
  const body = await getJson("/api/v1/uploads");
  uploadStates = body.states;
  // Polled while an upload runs or its indexes are being built (the history then says "ready").
  const running = body.uploads.some((u) => uploadStates.running.includes(u.state) || u.indexes === "building");
  const active = body.uploads.find((u) => u.active);
  if (announced !== null && active?.id !== announced) { showMessage(""); announced = null; }
  const status = (u) => [u.state, u.active ? "active" : "", u.stored && !u.active && u.state === "succeeded" ? "kept" : "",
    u.state === "downloading" ? `${(u.bytes_received / 1e6).toFixed(1)} MB` : "", u.indexes ? `indexes: ${u.indexes}` : "",
    u.warnings?.length ? plural(u.warnings.length, "warning") : "", u.upgrade_error ? "not upgraded" : "",
    u.error?.message || ""].filter(Boolean).join(" · ");
  $("#upload-history tbody").replaceChildren(...body.uploads.map((u) => el("tr", { "data-state": u.state },
    el("td", {}, u.id),
    el("td", { title: [u.upgrade_error, ...(u.warnings || [])].filter(Boolean).join("\n") || null }, status(u)),
    el("td", { class: "num", "data-unit": u.rows_loaded === 1 ? "row" : "rows" }, u.rows_loaded ? u.rows_loaded.toLocaleString("en-US") : ""),
    el("td", { title: u.finished_at || u.created_at }, when(u.finished_at || u.started_at || u.created_at)),
    el("td", {}, u.created_by || ""),
    el("td", { class: "url", title: u.url }, u.source === "link" ? u.url : `${u.source}: ${u.url}`),
    el("td", {}, ...(u.stored && !u.active ? [lookButton(u.id), " ", el("button", { type: "button", class: "activate",
      onclick: () => activate(u.id, `Upload ${u.id} is active again.`) }, "Activate")] : [])))));
  clearTimeout(pollTimer);
  if (running && viewOf(state()) === "upload") pollTimer = setTimeout(pollHistory, 1000);
}
