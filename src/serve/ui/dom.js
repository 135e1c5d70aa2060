// @ts-check
// DOM helpers: the only way anything is put on the page. Every piece of data reaches the page
// as text (createElement + textContent), never as markup, so a span named `<script>` is text.

import { fmtLocal, fmtRel, pretty, safeKind, safeStatus } from './format.js';

/**
 * An element with properties and children; strings become text nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [props] `class`, `text`, `dataset`, `on<event>` handlers, properties or attributes
 * @param {...unknown} children nodes, text, or arrays of them; null and false add nothing
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  /** @type {any} */
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
  for (const child of children) add(e, child);
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

/**
 * @param {Node} parent
 * @param {unknown} child
 */
export function add(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { for (const c of child) add(parent, c); return; }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

/**
 * Replaces an element's children; like replaceChildren, but null and false add nothing.
 * @template {Element} E
 * @param {E} el
 * @param {...unknown} children
 * @returns {E}
 */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const child of children) add(el, child);
  return el;
}

/**
 * A link that the router handles without reloading the page.
 * @param {string} href
 * @param {unknown} text
 * @param {string} [cls]
 */
export function link(href, text, cls) {
  return h('a', { href: href, 'data-nav': true, class: cls || null }, text);
}

/**
 * @param {string} id
 */
export const tracePath = (id) => '/traces/' + encodeURIComponent(id);
/**
 * @param {string} g
 */
export const groupPath = (g) => '/groups/' + encodeURIComponent(g);
/**
 * @param {string} a
 * @param {string} b
 */
export const diffPath = (a, b) => '/diff?' + new URLSearchParams({ a: a, b: b }).toString();
/**
 * A relative time that the ticker keeps current.
 * @param {number} ms
 */
export function relTime(ms) {
  return h('span', { class: 'rel', dataset: { rel: String(ms) }, title: fmtLocal(ms, true) }, fmtRel(ms));
}
/**
 * @param {unknown} status
 */
export function badge(status) {
  return h('span', { class: 'badge ' + safeStatus(status) }, String(status || 'unknown'));
}
/**
 * @param {unknown} kind
 */
export function kindChip(kind) {
  return h('span', { class: 'kind k-' + safeKind(kind) }, String(kind || '?'));
}
/**
 * An error: its message, then its data field by field, so a command's stderr reads as the lines
 * it wrote (one JSON document of the data would show them as a string with `\n` in it).
 * @param {import('./model.js').ErrorJson | null | undefined} err
 */
export function errorBox(err) {
  const data = err && err.data && typeof err.data === 'object' && Object.keys(err.data).length ? err.data : null;
  return h('div', { class: 'error-box', role: 'alert' },
    h('div', { class: 'e-message' }, err && err.message !== undefined ? String(err.message) : pretty(err)),
    data ? fieldsEl(data, 0) : null);
}

/**
 * Structured data to read: a row per field, text as preformatted text with its own line breaks
 * (verbatim), numbers and flags as code, objects and lists as nested rows; beyond a few levels,
 * indented JSON.
 * @param {object} obj an object or an array
 * @param {number} depth
 * @returns {HTMLElement}
 */
function fieldsEl(obj, depth) {
  /** @type {Record<string, unknown>} */
  const o = /** @type {any} */ (obj);
  const keys = Object.keys(o);
  return h('table', { class: 'kv fields' }, keys.map(function (k) {
    const v = o[k];
    const label = k === 'stderr_tail' ? 'stderr (tail)' : Array.isArray(obj) ? '[' + k + ']' : k.replace(/_/g, ' ');
    const value = typeof v === 'string' ? h('pre', null, v)
      : v === null || typeof v !== 'object' ? h('code', null, String(v))
        : depth < 3 && Object.keys(v).length ? fieldsEl(v, depth + 1) : h('pre', null, JSON.stringify(v, null, 2));
    return h('tr', null, h('td', { class: 'k' }, label), h('td', null, value));
  }));
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string[]} [keys] the keys to show, in order (all by default)
 */
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

/**
 * @param {string} title
 * @param {string | null} [extra]
 */
export function section(title, extra) {
  return h('h3', null, title, extra ? h('span', { class: 'muted' }, extra) : null);
}
