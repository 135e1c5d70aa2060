// @ts-check
// DOM helpers: the only way anything is put on the page. Every piece of data reaches the page
// as text (createElement + textContent), never as markup, so a span named `<script>` is text.

import { fmtLocal, fmtRel, pretty, safeKind, safeStatus } from './format.js';

/** An element with properties and children; strings become text nodes. */
export function h(tag, props) {
  const e = document.createElement(tag);
  if (props) {
    for (const key of Object.keys(props)) {
      const v = props[key];
      if (v === null || v === undefined || v === false) continue;
      if (key === 'class') e.className = v;
      else if (key === 'text') e.textContent = String(v);
      else if (key === 'dataset') Object.assign(e.dataset, v);
      else if (key.startsWith('on') && typeof v === 'function') e.addEventListener(key.slice(2), v);
      else if (key === 'value') e.value = v;
      else if (key === 'checked' || key === 'disabled' || key === 'hidden') e[key] = !!v;
      else e.setAttribute(key, v === true ? '' : String(v));
    }
  }
  for (let i = 2; i < arguments.length; i++) add(e, arguments[i]);
  return e;
}

/**
 * The element with this id, which the page is known to have.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error('the page has no #' + id);
  return e;
}

export function add(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { for (const c of child) add(parent, c); return; }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

/** Replaces an element's children; like replaceChildren, but null and false add nothing. */
export function fill(el) {
  el.replaceChildren();
  for (let i = 1; i < arguments.length; i++) add(el, arguments[i]);
  return el;
}

/** A link that the router handles without reloading the page. */
export function link(href, text, cls) {
  return h('a', { href: href, 'data-nav': true, class: cls || null }, text);
}

export const tracePath = (id) => '/traces/' + encodeURIComponent(id);
export const groupPath = (g) => '/groups/' + encodeURIComponent(g);
export const diffPath = (a, b) => '/diff?' + new URLSearchParams({ a: a, b: b }).toString();
/** A relative time that the ticker keeps current. */
export function relTime(ms) {
  return h('span', { class: 'rel', dataset: { rel: String(ms) }, title: fmtLocal(ms, true) }, fmtRel(ms));
}
export function badge(status) {
  return h('span', { class: 'badge ' + safeStatus(status) }, String(status || 'unknown'));
}
export function kindChip(kind) {
  return h('span', { class: 'kind k-' + safeKind(kind) }, String(kind || '?'));
}
export function errorBox(err) {
  const data = err && err.data && typeof err.data === 'object' && Object.keys(err.data).length ? err.data : null;
  return h('div', { class: 'error-box', role: 'alert' }, String(err && err.message !== undefined ? err.message : pretty(err)),
    data ? h('pre', null, pretty(data)) : null);
}

export function kvTable(obj, keys) {
  const table = h('table', { class: 'kv' });
  for (const k of keys || Object.keys(obj)) {
    const v = obj[k];
    const simple = v === null || typeof v !== 'object';
    table.appendChild(h('tr', null, h('td', { class: 'k' }, k),
      h('td', null, simple && typeof v !== 'string' ? h('code', null, String(v)) : h('pre', null, pretty(v)))));
  }
  return table;
}

export function section(title, extra) {
  return h('h3', null, title, extra ? h('span', { class: 'muted' }, extra) : null);
}
