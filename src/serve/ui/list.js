// @ts-check
// Page 1 of serve: the trace list, with filters that live in the address, live refresh, and
// two ticked rows to compare.

import { api, errorNotice, serial } from './api.js';
import { badge, diffPath, h, relTime, tracePath, groupPath } from './dom.js';
import { fmtCost, fmtInt, fmtLocal, fmtMs, pad, parseMs, plural, totalTokens } from './format.js';
import { app, navigate, setCrumbs, setState } from './shell.js';

/**
 * The list's filters, as the address and `/api/traces` spell them ('' when unset).
 * @typedef {{ search: string, workflow: string, group: string, status: string, since: string,
 *   from: string, until: string, limit: string, meta: string[] }} Filters
 * @typedef {import('./model.js').TraceSummary} TraceSummary
 */

/** @type {ReadonlyArray<Exclude<keyof Filters, 'meta'>>} */
export const LIST_KEYS = ['search', 'workflow', 'group', 'status', 'since', 'from', 'until', 'limit'];
export const DEFAULT_LIMIT = 100;
export const SINCE_PRESETS = ['15m', '1h', '24h', '7d'];
/** @type {Set<string>} */
export const knownWorkflows = new Set();

/**
 * @param {string} search the query string
 * @returns {Filters}
 */
export function readFilters(search) {
  const q = new URLSearchParams(search);
  /** @type {Filters} */
  const f = { search: '', workflow: '', group: '', status: '', since: '', from: '', until: '', limit: '', meta: q.getAll('meta').filter(Boolean) };
  for (const k of LIST_KEYS) f[k] = (q.get(k) || '').trim();
  return f;
}

/**
 * The query string of a filter: the same keys for the page's URL and for /api/traces.
 * @param {Filters} f
 * @param {boolean} forApi the limit always (the API), or only when not the default (the address)
 */
export function filterQuery(f, forApi) {
  const q = new URLSearchParams();
  for (const k of LIST_KEYS) {
    if (k === 'limit') continue;
    if (f[k]) q.set(k, f[k]);
  }
  for (const m of f.meta) q.append('meta', m);
  const limit = Number(f.limit) || DEFAULT_LIMIT;
  if (forApi || limit !== DEFAULT_LIMIT) q.set('limit', String(limit));
  return q.toString();
}

/**
 * @param {Filters} f
 */
export const hasFilters = (f) => !!(f.search || f.workflow || f.group || f.status || f.since || f.from || f.until || f.meta.length);

/**
 * RFC 3339 → the value of a datetime-local input (local time).
 * @param {string} iso
 */
export function toLocalInput(iso) {
  const ms = parseMs(iso);
  if (!isFinite(ms)) return '';
  const d = new Date(ms);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}
/**
 * @param {string} v
 */
export function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z');
}

/**
 * @returns {import('./shell.js').Page}
 */
export function listPage() {
  document.title = 'Traces — agentrace';
  setCrumbs([{ text: 'Traces' }]);
  let filters = readFilters(location.search);
  /** @type {TraceSummary[] | null} */
  let traces = null;
  /** @type {Set<string> | null} ids in the last rendering, to mark new rows */
  let seen = null;
  /** @type {string[]} up to two trace ids, in the order they were ticked */
  const checked = [];
  let dead = false;

  // Filter controls.
  const fSearch = h('input', { type: 'search', name: 'search', placeholder: 'Words in names, prompts, outputs, events…', 'aria-label': 'Full-text search', autocomplete: 'off' });
  const wfList = h('datalist', { id: 'workflow-names' });
  const fWorkflow = h('input', { type: 'text', name: 'workflow', placeholder: 'Any workflow', list: 'workflow-names', 'aria-label': 'Workflow', autocomplete: 'off' });
  const fGroup = h('input', { type: 'text', name: 'group', placeholder: 'Any group', 'aria-label': 'Group id', autocomplete: 'off' });
  const fStatus = h('select', { name: 'status', 'aria-label': 'Status' },
    h('option', { value: '' }, 'Any status'), ['ok', 'error', 'running', 'cancelled'].map((s) => h('option', { value: s }, s)));
  const metaChips = h('span', { class: 'meta-chips' });
  const fMeta = h('input', { type: 'text', name: 'meta', placeholder: 'key=value, Enter', 'aria-label': 'Metadata key=value', autocomplete: 'off' });
  const presets = h('div', { class: 'presets', role: 'group', 'aria-label': 'Started within' });
  const fFrom = h('input', { type: 'datetime-local', name: 'from', 'aria-label': 'Started from', title: 'Started at or after (your local time)' });
  const fUntil = h('input', { type: 'datetime-local', name: 'until', 'aria-label': 'Started until', title: 'Started at or before (your local time)' });
  const applyBtn = h('button', { type: 'submit', class: 'btn primary' }, 'Apply');
  const clearBtn = h('button', { type: 'button', class: 'btn', onclick: function () { apply({ meta: [] }, true); } }, 'Clear filters');

  const form = h('form', { class: 'filters card', autocomplete: 'off', onsubmit: function (/** @type {Event} */ e) { e.preventDefault(); apply(fromControls()); } },
    h('label', { class: 'field search' }, h('span', null, 'Search'), fSearch),
    h('label', { class: 'field workflow' }, h('span', null, 'Workflow'), fWorkflow, wfList),
    h('label', { class: 'field group' }, h('span', null, 'Group'), fGroup),
    h('label', { class: 'field status' }, h('span', null, 'Status'), fStatus),
    h('label', { class: 'field meta' }, h('span', null, 'Metadata'), h('div', { class: 'meta-box' }, metaChips, fMeta)),
    h('div', { class: 'field since' }, h('span', null, 'Started within'), presets),
    h('label', { class: 'field from' }, h('span', null, 'From'), fFrom),
    h('label', { class: 'field until' }, h('span', null, 'Until'), fUntil),
    h('div', { class: 'filter-actions' }, applyBtn, clearBtn, h('span', { class: 'spacer' }),
      h('span', { class: 'faint' }, 'Filters are part of the address: share or bookmark it.')));

  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const compareBtn = h('button', { type: 'button', class: 'btn', disabled: true, onclick: compare }, 'Compare selected');
  const compareHint = h('span', { class: 'faint' }, 'Tick two traces to compare them.');
  const bar = h('div', { class: 'list-bar' }, count, h('span', { class: 'spacer' }), compareHint, compareBtn);
  const body = h('div', { class: 'list-body' });
  const more = h('div', { class: 'more' });
  app.appendChild(h('div', { class: 'page' },
    h('div', { class: 'page-title' }, h('h1', null, 'Traces')), form, bar, body, more));

  function fromControls() {
    const f = {
      search: fSearch.value.trim(), workflow: fWorkflow.value.trim(), group: fGroup.value.trim(),
      status: fStatus.value, since: filters.since, from: fromLocalInput(fFrom.value), until: fromLocalInput(fUntil.value),
      meta: filters.meta.slice(), limit: '',
    };
    const pending = fMeta.value.trim();
    if (pending && pending.indexOf('=') > 0 && f.meta.indexOf(pending) < 0) f.meta.push(pending);
    if (f.from || f.until) f.since = '';
    return f;
  }

  function syncControls() {
    fSearch.value = filters.search;
    fWorkflow.value = filters.workflow;
    fGroup.value = filters.group;
    fStatus.value = filters.status;
    if (fStatus.value !== filters.status) {
      fStatus.appendChild(h('option', { value: filters.status }, filters.status));
      fStatus.value = filters.status;
    }
    fFrom.value = toLocalInput(filters.from);
    fUntil.value = toLocalInput(filters.until);
    fMeta.value = '';
    metaChips.replaceChildren();
    filters.meta.forEach(function (m) {
      const at = m.indexOf('=');
      metaChips.appendChild(h('span', { class: 'chip', title: m },
        h('span', { class: 'k' }, at > 0 ? m.slice(0, at) + ' =' : ''), h('span', { class: 'v' }, at > 0 ? m.slice(at + 1) : m),
        h('button', { type: 'button', 'aria-label': 'Remove ' + m, title: 'Remove',
          onclick: function () { apply(Object.assign(fromControls(), { meta: filters.meta.filter((x) => x !== m) })); } }, '×')));
    });
    presets.replaceChildren();
    const options = [''].concat(SINCE_PRESETS);
    if (filters.since && options.indexOf(filters.since) < 0) options.push(filters.since);
    options.forEach(function (p) {
      const on = !filters.from && !filters.until && filters.since === p;
      // `data-preset`, not `data-since`: the page's clock rewrites every [data-since] element
      // each second (a running trace's elapsed time), and turned these labels into durations.
      presets.appendChild(h('button', { type: 'button', 'aria-pressed': on ? 'true' : 'false', dataset: { preset: p },
        onclick: function () { apply(Object.assign(fromControls(), { since: p, from: '', until: '' })); } }, p || 'Any'));
    });
    clearBtn.disabled = !hasFilters(filters);
  }

  /**
   * @param {Partial<Filters>} f
   * @param {boolean} [replaceAll] drop the limit too
   */
  function apply(f, replaceAll) {
    const next = Object.assign({ search: '', workflow: '', group: '', status: '', since: '', from: '', until: '', limit: '', meta: [] }, f);
    if (replaceAll) next.limit = '';
    const qs = filterQuery(next, false);
    const url = '/' + (qs ? '?' + qs : '');
    filters = next;
    syncControls();
    if (url !== location.pathname + location.search) history.pushState(null, '', url);
    load();
  }

  fStatus.addEventListener('change', function () { apply(fromControls()); });
  for (const input of [fWorkflow, fGroup, fFrom, fUntil]) {
    input.addEventListener('change', function () { apply(fromControls()); });
  }
  fMeta.addEventListener('keydown', function (e) {
    if (e.key === 'Enter') {
      e.preventDefault();
      const v = fMeta.value.trim();
      if (v && v.indexOf('=') <= 0) { fMeta.setCustomValidity('Write key=value'); fMeta.reportValidity(); return; }
      fMeta.setCustomValidity('');
      apply(fromControls());
    } else {
      fMeta.setCustomValidity('');
    }
  });

  function compare() {
    if (checked.length !== 2 || !traces) return;
    const by = new Map(traces.map((t) => [t.trace_id, t]));
    const pair = checked.slice().sort(function (x, y) {
      const tx = by.get(x), ty = by.get(y);
      return (tx ? parseMs(tx.started_at) : 0) - (ty ? parseMs(ty.started_at) : 0);
    });
    navigate(diffPath(pair[0], pair[1]));
  }

  function updateCompare() {
    compareBtn.disabled = checked.length !== 2;
    compareBtn.textContent = checked.length === 2 ? 'Compare the 2 selected (diff)' : 'Compare selected';
    compareHint.textContent = checked.length === 2 ? '' : checked.length === 1 ? 'Tick one more trace to compare.' : 'Tick two traces to compare them.';
  }

  /**
   * @param {string} id
   * @param {boolean} on
   */
  function toggleCheck(id, on) {
    const at = checked.indexOf(id);
    if (on && at < 0) {
      checked.push(id);
      if (checked.length > 2) checked.shift();
    } else if (!on && at >= 0) {
      checked.splice(at, 1);
    }
    for (const tr of /** @type {NodeListOf<HTMLElement>} */ (body.querySelectorAll('tr[data-trace-id]'))) {
      const isOn = checked.indexOf(tr.dataset.traceId || '') >= 0;
      tr.classList.toggle('checked', isOn);
      const box = /** @type {HTMLInputElement | null} */ (tr.querySelector('input[type="checkbox"]'));
      if (box) box.checked = isOn;
    }
    updateCompare();
  }

  /**
   * @param {TraceSummary} t
   * @param {boolean} fresh new since the last rendering
   */
  function row(t, fresh) {
    const started = parseMs(t.started_at);
    const running = t.status === 'running';
    const box = h('input', { type: 'checkbox', 'aria-label': 'Select ' + t.name + ' for comparison', checked: checked.indexOf(t.trace_id) >= 0,
      onchange: function (/** @type {Event} */ e) { toggleCheck(t.trace_id, /** @type {HTMLInputElement} */ (e.target).checked); } });
    const err = t.error && t.error.message ? h('span', { class: 'err', title: t.error.message }, t.error.message) : null;
    const tr = h('tr', { dataset: { traceId: t.trace_id }, class: (checked.indexOf(t.trace_id) >= 0 ? 'checked ' : '') + (fresh ? 'fresh' : '') },
      h('td', { class: 'c-check' }, box),
      h('td', { class: 'c-name' }, h('div', { class: 'cell-name' },
        h('a', { href: tracePath(t.trace_id), 'data-nav': true, title: t.name }, t.name || '(unnamed)'),
        err || h('span', { class: 'sub', title: t.trace_id }, t.trace_id))),
      h('td', { class: 'c-workflow ellipsis', title: t.workflow || '' }, t.workflow || ''),
      h('td', { class: 'c-group ellipsis' }, t.group_id ? h('a', { href: groupPath(t.group_id), 'data-nav': true, title: 'Conversation ' + t.group_id }, t.group_id) : h('span', { class: 'faint' }, '—')),
      h('td', { class: 'c-status' }, badge(t.status)),
      h('td', { class: 'c-started' }, h('div', { class: 'cell-time' }, h('span', { class: 'nowrap' }, fmtLocal(started)), relTime(started))),
      h('td', { class: 'c-duration num' }, running && (t.duration_ms === null || t.duration_ms === undefined)
        ? h('span', { dataset: { since: String(started) } }, fmtMs(Date.now() - started) + '…')
        : fmtMs(t.duration_ms)),
      h('td', { class: 'c-tokens num', title: t.usage ? fmtInt(t.usage.input_tokens) + ' in · ' + fmtInt(t.usage.output_tokens) + ' out' : '' }, t.usage ? fmtInt(totalTokens(t.usage)) : '—'),
      h('td', { class: 'c-cost num' }, t.offline
        ? h('span', { class: 'faint', title: 'Answered by the built-in offline model: not priced' }, 'offline')
        : fmtCost(t.cost_usd)));
    tr.addEventListener('click', function (e) {
      if (!(e.target instanceof Element) || e.target.closest('a, input, button, label')) return;
      const sel = window.getSelection ? String(window.getSelection()) : '';
      if (sel) return; // the user is selecting text, not opening the trace
      navigate(tracePath(t.trace_id));
    });
    return tr;
  }

  function draw() {
    body.replaceChildren();
    more.replaceChildren();
    if (!traces) return;
    const limit = Number(filters.limit) || DEFAULT_LIMIT;
    count.textContent = traces.length === 0 ? '' : (traces.length >= limit ? 'Newest ' : '') + plural(traces.length, 'trace');
    if (traces.length === 0) {
      body.appendChild(hasFilters(filters)
        ? h('div', { class: 'notice', dataset: { empty: 'filtered' } }, 'No traces match these filters. ', h('button', { type: 'button', class: 'btn link', onclick: function () { apply({ meta: [] }, true); } }, 'Clear the filters'))
        : h('div', { class: 'notice', dataset: { empty: 'store' } }, 'No traces yet. Run a workflow — ', h('code', null, 'agentrace run workflows/research.yaml --offline'), ' — or send traces to this server; they appear here as they are written.'));
      return;
    }
    const ids = new Set(traces.map((t) => t.trace_id));
    for (let i = checked.length - 1; i >= 0; i--) if (!ids.has(checked[i])) checked.splice(i, 1);
    const tbody = h('tbody');
    for (const t of traces) tbody.appendChild(row(t, seen !== null && !seen.has(t.trace_id)));
    seen = ids;
    body.appendChild(h('div', { class: 'card' }, h('table', { class: 'traces' },
      h('thead', null, h('tr', null,
        h('th', { class: 'c-check' }, h('span', { class: 'faint', title: 'Select two traces to compare' }, '⇄')),
        h('th', { class: 'c-name' }, 'Name'), h('th', { class: 'c-workflow' }, 'Workflow'), h('th', { class: 'c-group' }, 'Group'),
        h('th', { class: 'c-status' }, 'Status'), h('th', { class: 'c-started' }, 'Started'), h('th', { class: 'c-duration num' }, 'Duration'),
        h('th', { class: 'c-tokens num' }, 'Tokens'), h('th', { class: 'c-cost num' }, 'Cost'))),
      tbody)));
    if (traces.length >= limit && limit < 5000) {
      more.appendChild(h('button', { type: 'button', class: 'btn', onclick: function () { apply(Object.assign({}, filters, { limit: String(Math.min(5000, limit + DEFAULT_LIMIT)) })); } }, 'Show more'));
    }
    updateCompare();
  }

  const load = serial(async function () {
    const q = filterQuery(filters, true);
    try {
      const list = await api('/api/traces?' + q);
      if (dead) return;
      if (q !== filterQuery(filters, true)) return; // filters changed while loading; a newer load follows
      traces = Array.isArray(list) ? list : [];
      for (const t of traces) if (t.workflow) knownWorkflows.add(t.workflow);
      wfList.replaceChildren();
      for (const w of Array.from(knownWorkflows).sort()) wfList.appendChild(h('option', { value: w }));
      draw();
      app.dataset.count = String(traces.length);
      app.dataset.loaded = filterQuery(filters, false);
      setState('ready');
    } catch (e) {
      if (dead) return;
      traces = null;
      seen = null;
      count.textContent = '';
      body.replaceChildren(errorNotice(e, 'the traces'));
      more.replaceChildren();
      setState('error');
    }
  });

  syncControls();
  updateCompare();
  load();
  return {
    refresh: load,
    destroy: function () { dead = true; },
  };
}
listPage.pageName = 'list';
