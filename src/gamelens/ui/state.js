// The page's state lives in its URL (?view=explore&genres=indie&sort=-rating...), in the API's own
// parameter names, so a view can be bookmarked and shared, and Back works. `page` holds what /schema said.

export const page = { schema: null };  // what GET /api/v1/schema said (loaded once per key)
let drawn = () => {};  // what draws the view (main.js): called whenever the URL changes here
export const onNavigate = (draw) => { drawn = draw; };

export const VIEWS = ["explore", "aggregate", "trends", "compare", "upload"];
export const CONTROL = new Set(["view", "sort", "offset", "limit", "fields", "group_by", "metrics", "cursor", "format",
  "top", "facet", "facet_size", "page", "from", "game", "having", "series", "a", "b", "chart", "version"]);
export const state = () => new URLSearchParams(location.search);
// Whether the page still shows what `params` asked for: a render whose answers arrive after the user
// moved on must not draw over the newer one.
export const isCurrent = (params) => state().toString() === params.toString();
export function go(params, replace = false, historyState = null) {
  for (const [k, v] of [...params]) if (v === "") params.delete(k);
  // The stored version looked at (`version=N`, read rather than the data served) stays across every move
  // until the note's "Back to the served data" (leaveVersion).
  const looking = state().get("version");
  if (looking && !params.has("version")) params.set("version", looking);
  push(params, replace, historyState);
}
export function leaveVersion() {
  const params = state();
  params.delete("version");
  push(params);
}
function push(params, replace = false, historyState = null) {
  const url = `${location.pathname}?${params.toString()}`;
  (replace ? history.replaceState : history.pushState).call(history, historyState, "", url);
  drawn();
}
// The sort after a click on a column's heading: first its own order (`largestFirst`: -name), then the
// other way round, each click turning it (explore's rows, aggregate's groups).
export function nextSort(current, name, largestFirst) {
  if (current === name) return `-${name}`;
  if (current === `-${name}`) return name;
  return largestFirst ? `-${name}` : name;
}
export function filterParams(params) {
  const out = new URLSearchParams();
  for (const [k, v] of params) if (!CONTROL.has(k)) out.append(k, v);
  return out;
}
export const viewOf = (params) => (VIEWS.includes(params.get("view")) ? params.get("view") : "explore");
