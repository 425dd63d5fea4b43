// GameLens web UI: ES modules, no build step, nothing from a CDN. This one draws the current view and
// wires the page's controls; each view is a module of its own (views/).

import { api, curlOf, forgetSideCalls, getJson, getSideJson, key, lastCallMade, servedBySelf } from "./api.js";
import { $, el, showMessage } from "./dom.js";
import { buildFilterForm, fillFilterForm, loadSuggestions } from "./filters.js";
import { VIEWS, filterParams, go, isCurrent, leaveVersion, onNavigate, page, state, viewOf } from "./state.js";
import { SHARE_80, buildAggregateForm, renderAggregate } from "./views/aggregate.js";
import { buildCompareForm, renderCompare } from "./views/compare.js";
import { buildColumnChooser, buildExportButtons, closeGame, renderExplore } from "./views/explore.js";
import { buildTrendForm, renderTrends } from "./views/trends.js";
import { renderHistory, uploadFile, uploadLink, uploadSample } from "./views/upload.js";

export const QUESTIONS = [
  ["Top tags by estimated revenue since 2020",
    "view=aggregate&group_by=tags&metrics=count,sum:est_revenue&sort=-sum_est_revenue&release_date__gte=2020-01-01&limit=15"],
  ["Which price bands are rated best", `view=aggregate&group_by=price_band&metrics=count,avg:rating,${SHARE_80}&sort=price_band`],
  ["Studios with the most games rated 80%+", "view=aggregate&group_by=developers&metrics=count&rating__gte=0.8&limit=15"],
  ["How have rogue-likes and -lites grown", "view=trends&group_by=release_year&metrics=count&tags=rogue"],
  ["The 8 biggest genres, year by year", "view=trends&group_by=genres,release_year&metrics=count&top=8"],
  ["Best-rated games with 1,000+ reviews", "view=explore&reviews__gte=1000&sort=-rating"],
];
export function showOnly(view, { welcome = false, empty = false } = {}) {
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
export async function render() {
  const params = state();
  const view = viewOf(params);
  showMessage("");
  // Without a key the page tries all the same: a server with GAMELENS_AUTH=off answers, one with keys
  // answers 401 and the welcome asks for a key.
  showOnly(view);
  forgetSideCalls();
  showVersionNote(params);
  if (page.schema) loadSuggestions();  // again when the version looked at changed (init loads the first)
  const home = ["aggregate", "trends", "compare"].includes(view) ? `#view-${view}` : "#view-explore";
  $(home).prepend($("#filters-box"));
  try {
    if (!page.schema) await init();
    if (!key()) $("#key-state").textContent = "API key: not needed";  // the API answered without one
    fillFilterForm(params);
    // Open when the link carries filters (on a wide screen); never close what the user opened meanwhile.
    if (window.innerWidth > 700 && [...filterParams(params)].length > 0) $("#filters-box").open = true;
    if (view === "explore") await renderExplore(params);
    else if (view === "aggregate") await renderAggregate(params);
    else if (view === "trends") await renderTrends(params);
    else if (view === "compare") await renderCompare(params);
    else await renderHistory();
  } catch (e) {
    if (e.code === "no_dataset") {
      // an upload loaded to be kept waits to be activated: say so, and where
      const kept = e.body?.value?.kept;
      $("#empty-why").replaceChildren(...(kept ? [`${e.message} `, el("a", { href: `?view=explore&version=${kept}`,
        id: "empty-look", onclick: (event) => { event.preventDefault(); go(new URLSearchParams({ view: "explore", version: kept })); } },
      "Look at it first")] : []));
      showOnly(view, { empty: true });
    }
    else if (e.status === 401 && !key()) {
      $("#key-state").textContent = "API key: none";
      showOnly(view, { welcome: true });
    } else if (e.status === 401) {  // the saved key is not valid: say so where it says "saved"
      $("#key-state").textContent = "API key: not valid";
      showMessage(e.message, "error");
      showOnly(view, { welcome: true });
    }
    else {
      showMessage(e.message, "error");
      // What the view shows is not the link's answer: nothing to page through or export from it.
      for (const b of document.querySelectorAll(".exports button, #prev, #next, #agg-prev, #agg-next")) b.disabled = true;
      // nor rows or charts of an earlier answer left under the message
      const earlier = ["#results thead", "#results tbody", "#agg-table thead", "#agg-table tbody", "#compare-table thead",
        "#compare-table tbody", "#trend-table thead", "#trend-table tbody", "#agg-chart", "#year-chart", "#trend-chart",
        "#trend-legend", "#agg-caption", "#trend-caption", "#compare-among", "#total", "#page", "#agg-page"];
      for (const shown of document.querySelectorAll(earlier.join(", "))) shown.replaceChildren();
      delete $("#total").dataset.total;
      $("#detail").hidden = true;
    }
  }
}
// Reads of a stored version other than the one served (`version=N`): say so above every view, whether
// it is served meanwhile, and offer the way back.
async function showVersionNote(params) {
  const id = params.get("version");
  $("#version-note").hidden = !id;
  if (!id) return;
  $("#version-text").textContent = `You are looking at upload ${id}, not at the data served.`;
  $("#version-serve").hidden = false;
  let rec = null;
  try {
    rec = await getSideJson(`/api/v1/uploads/${encodeURIComponent(id)}`);
  } catch (e) {  // no such upload, or not a number: the view says why; nothing to serve
    $("#version-serve").hidden = true;
    return;
  }
  if (!isCurrent(params)) return;
  if (rec.active) $("#version-text").textContent = `Upload ${id} is the data served.`;
  else if (!rec.stored) $("#version-text").textContent = `Upload ${id} has no data stored.`;
  $("#version-serve").hidden = rec.active || !rec.stored;
}
async function serveLookedAt() {
  const id = state().get("version");
  try {
    await api(`/api/v1/uploads/${encodeURIComponent(id)}/activate`, { method: "POST" });
  } catch (e) {  // a reader key (403), or its data was dropped meanwhile
    showMessage(e.message, "error");
    return;
  }
  servedBySelf(id);
  leaveVersion();  // it is the data served now: the views read it without `version=`
  showMessage(`Upload ${id} is served now.`);
}
export async function init() {
  page.schema = await getJson("/api/v1/schema");
  buildFilterForm();
  buildColumnChooser();
  buildExportButtons();
  buildAggregateForm();
  buildTrendForm();
  buildCompareForm();
  loadSuggestions();
}
export function useKey(value) {
  localStorage.setItem("gamelens.key", value.trim());
  $("#key-state").textContent = value.trim() ? "API key: saved" : "API key: none";
  $("#key-box").open = false;
  page.schema = null;
  render();
}
onNavigate(render);

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
  $("#upload-file").addEventListener("change", () => {
    const file = $("#upload-file").files[0];
    $("#upload-file").value = "";  // the same file chosen again is a new upload (no change event otherwise)
    if (file) uploadFile(file);
  });
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
  $("#version-serve").addEventListener("click", serveLookedAt);
  $("#version-leave").addEventListener("click", leaveVersion);
  $("#detail-close").addEventListener("click", closeGame);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !$("#detail").hidden) closeGame(); });
  $("#copy-curl").addEventListener("click", () => {
    if (!lastCallMade()) return;
    const curl = curlOf(lastCallMade());
    navigator.clipboard?.writeText(curl).catch(() => {});
    $("#copy-curl").dataset.copied = curl;
    showMessage(`Copied: ${curl}`);
  });
  window.addEventListener("popstate", render);
  render();
});
