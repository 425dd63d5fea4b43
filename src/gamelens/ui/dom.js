// The page's elements: find, make, and say a message.

export const $ = (sel) => document.querySelector(sel);
export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
};
// A focusable header or row acts as a button does: on Enter and on Space (which would scroll the page).
export const onActivate = (act) => (event) => {
  if (event.key !== "Enter" && event.key !== " ") return;
  event.preventDefault();
  act();
};
export const SVGNS = "http://www.w3.org/2000/svg";
export const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
export function showMessage(text, kind = "info") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}
