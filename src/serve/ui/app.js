// agentrace serve: the browser UI.
//
// One script, no dependencies, nothing fetched but the JSON API of the server that served it.
// Pages route on the client with history.pushState: `/` (trace list), `/traces/<id>`,
// `/groups/<group>` (a conversation) and `/diff?a=&b=`. Every piece of data reaches the page as
// text (createElement + textContent), never as markup, so a span named `<script>` is just text.
// The page follows the store live: `/api/events` says when anything changed, and the page on
// screen fetches its data again (debounced).
(function () {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // DOM helpers: the only way anything is put on the page.

  /** An element with properties and children; strings become text nodes. */
  function h(tag, props) {
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

  function add(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { for (const c of child) add(parent, c); return; }
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  /** Replaces an element's children; like replaceChildren, but null and false add nothing. */
  function fill(el) {
    el.replaceChildren();
    for (let i = 1; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }

  /** A link that the router handles without reloading the page. */
  function link(href, text, cls) {
    return h('a', { href: href, 'data-nav': true, class: cls || null }, text);
  }

  const tracePath = (id) => '/traces/' + encodeURIComponent(id);
  const groupPath = (g) => '/groups/' + encodeURIComponent(g);
  const diffPath = (a, b) => '/diff?' + new URLSearchParams({ a: a, b: b }).toString();

  // ---------------------------------------------------------------------------------------
  // Formatting.

  const pad = (n, w) => String(n).padStart(w || 2, '0');

  function fmtMs(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return '—';
    const a = Math.abs(ms), sign = ms < 0 ? '-' : '';
    if (a === 0) return '0 ms';
    if (a < 1) return sign + Math.max(1, Math.round(a * 1000)) + ' µs';
    if (a < 10) return sign + a.toFixed(2) + ' ms';
    if (a < 1000) return sign + a.toFixed(1) + ' ms';
    if (a < 60000) return sign + (a / 1000).toFixed(a < 10000 ? 2 : 1) + ' s';
    if (a < 3600000) {
      const m = Math.floor(a / 60000);
      return sign + m + 'm ' + Math.floor((a - m * 60000) / 1000) + 's';
    }
    const hr = Math.floor(a / 3600000);
    return sign + hr + 'h ' + Math.floor((a - hr * 3600000) / 60000) + 'm';
  }

  /** A gap between two moments, in words: "3m 12s". */
  function fmtGap(ms) {
    if (!isFinite(ms)) return '';
    if (ms < 1000) return fmtMs(ms);
    const s = Math.round(ms / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    const hr = Math.floor(m / 60);
    if (hr < 48) return hr + 'h ' + (m % 60) + 'm';
    return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
  }

  function fmtInt(n) {
    if (n === null || n === undefined || !isFinite(n)) return '—';
    return Math.round(n).toLocaleString('en-US');
  }

  function fmtCost(c) {
    if (c === null || c === undefined || !isFinite(c)) return '—';
    const a = Math.abs(c), sign = c < 0 ? '-' : '';
    if (a === 0) return '$0';
    if (a < 0.000001) return sign + '<$0.000001';
    if (a < 0.01) return sign + '$' + trimZeros(a.toFixed(6));
    if (a < 1) return sign + '$' + a.toFixed(4);
    return sign + '$' + a.toFixed(2);
  }
  const trimZeros = (s) => s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');

  /** Local date and time, to the second: 2026-11-25 14:03:12. */
  function fmtLocal(ms, withMillis) {
    if (!isFinite(ms)) return '—';
    const d = new Date(ms);
    let s = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (withMillis) s += '.' + pad(d.getMilliseconds(), 3);
    return s;
  }

  function fmtRel(ms) {
    if (!isFinite(ms)) return '';
    const d = Date.now() - ms;
    if (d < 0) return 'in the future';
    if (d < 5000) return 'just now';
    if (d < 60000) return Math.floor(d / 1000) + 's ago';
    if (d < 3600000) return Math.floor(d / 60000) + 'm ago';
    if (d < 86400000) return Math.floor(d / 3600000) + 'h ago';
    if (d < 30 * 86400000) return Math.floor(d / 86400000) + 'd ago';
    return new Date(ms).toLocaleDateString();
  }

  /** A relative time that the ticker keeps current. */
  function relTime(ms) {
    return h('span', { class: 'rel', dataset: { rel: String(ms) }, title: fmtLocal(ms, true) }, fmtRel(ms));
  }

  /** RFC 3339 → microseconds since the epoch, exact (Date.parse alone stops at milliseconds). */
  function parseUs(s) {
    if (typeof s !== 'string') return NaN;
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/i.exec(s.trim());
    if (!m) { const t = Date.parse(s); return isFinite(t) ? t * 1000 : NaN; }
    const base = Date.parse(m[1] + (m[3] || 'Z'));
    if (!isFinite(base)) return NaN;
    const frac = m[2] ? Math.round(Number('0' + m[2]) * 1e6) : 0;
    return base * 1000 + frac;
  }
  const parseMs = (s) => parseUs(s) / 1000;

  function pretty(v) {
    if (typeof v === 'string') {
      const t = v.trim();
      if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
        try { return JSON.stringify(JSON.parse(t), null, 2); } catch (e) { /* plain text */ }
      }
      return v;
    }
    if (v === undefined) return '';
    return JSON.stringify(v, null, 2);
  }

  function plural(n, one, many) { return fmtInt(n) + ' ' + (n === 1 ? one : (many || one + 's')); }

  const STATUS_MARK = { error: '✕', cancelled: '⊘', skipped: '↷', running: '●' };
  const KINDS = ['custom', 'agent', 'generation', 'function', 'handoff', 'command'];
  const safeKind = (k) => (KINDS.indexOf(k) >= 0 ? k : 'custom');
  const safeStatus = (s) => (['ok', 'error', 'cancelled', 'skipped', 'running'].indexOf(s) >= 0 ? s : 'other');

  function badge(status) {
    return h('span', { class: 'badge ' + safeStatus(status) }, String(status || 'unknown'));
  }
  function kindChip(kind) {
    return h('span', { class: 'kind k-' + safeKind(kind) }, String(kind || '?'));
  }

  function usageText(u) {
    if (!u) return '—';
    const total = u.total_tokens !== undefined ? u.total_tokens : (u.input_tokens || 0) + (u.output_tokens || 0);
    return fmtInt(total) + ' (' + fmtInt(u.input_tokens || 0) + ' in · ' + fmtInt(u.output_tokens || 0) + ' out)';
  }
  const totalTokens = (u) => (u ? (u.total_tokens !== undefined ? u.total_tokens : (u.input_tokens || 0) + (u.output_tokens || 0)) : 0);

  // ---------------------------------------------------------------------------------------
  // The API.

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path) {
    let res;
    try {
      res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'The agentrace server cannot be reached (' + (e && e.message ? e.message : e) + '). Is `agentrace serve` still running?');
    }
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = undefined; }
    if (!res.ok) {
      if (res.status === 401) {
        throw new ApiError(401, 'open ' + location.origin + location.pathname + '?token=… once, with the token `agentrace serve` was started with (--token or AGENTRACE_TOKEN); the browser keeps it in a cookie.');
      }
      const msg = body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status + ' ' + res.statusText;
      throw new ApiError(res.status, msg);
    }
    if (body === undefined) throw new ApiError(res.status, 'The server answered ' + path + ' with something that is not JSON.');
    return body;
  }

  function errorNotice(err, what) {
    const status = err && err.status;
    const title = status === 401 ? 'Unauthorised' : status === 403 ? 'Forbidden' : status === 404 ? 'Not found' : status === 400 ? 'Bad request' : 'Could not load ' + what;
    return h('div', { class: 'notice error', role: 'alert' }, h('strong', null, title + ': '), String(err && err.message ? err.message : err));
  }

  // ---------------------------------------------------------------------------------------
  // The app shell: router, page lifecycle, live updates.

  const app = document.getElementById('app');
  const crumbs = document.getElementById('crumbs');
  const liveBadge = document.getElementById('live');
  let current = null; // { refresh(), destroy(), tick() } of the page on screen

  function setState(state) { app.dataset.state = state; }

  function setCrumbs(items) {
    crumbs.replaceChildren();
    items.forEach(function (it, i) {
      if (i > 0) crumbs.appendChild(h('span', { class: 'sep' }, '›'));
      if (it.href) crumbs.appendChild(link(it.href, it.text));
      else crumbs.appendChild(h('span', { class: 'here', title: it.text }, it.text));
    });
  }

  const routes = [
    [/^\/$/, listPage],
    [/^\/traces\/([^/]+)\/?$/, tracePage],
    [/^\/groups\/([^/]+)\/?$/, groupPage],
    [/^\/diff\/?$/, diffPage],
  ];

  function render() {
    if (current && current.destroy) current.destroy();
    current = null;
    app.replaceChildren();
    app.className = '';
    delete app.dataset.loaded;
    delete app.dataset.count;
    delete app.dataset.spans;
    setState('loading');
    const path = location.pathname;
    for (const [re, page] of routes) {
      const m = re.exec(path);
      if (!m) continue;
      let arg = m[1];
      if (arg !== undefined) { try { arg = decodeURIComponent(arg); } catch (e) { /* keep raw */ } }
      app.dataset.page = page.pageName;
      current = page(arg);
      return;
    }
    app.dataset.page = 'not-found';
    document.title = 'Not found — agentrace';
    setCrumbs([{ text: 'Not found' }]);
    app.appendChild(h('div', { class: 'notice' }, 'There is no page at ', h('code', null, path), '. ', link('/', 'See all traces'), '.'));
    setState('ready');
  }

  function navigate(url, replace) {
    if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
    render();
    window.scrollTo(0, 0);
  }

  document.addEventListener('click', function (e) {
    const a = e.target.closest ? e.target.closest('a[data-nav]') : null;
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    const href = a.getAttribute('href');
    if (href === location.pathname + location.search) { if (current && current.refresh) current.refresh(); return; }
    navigate(href);
  });
  window.addEventListener('popstate', render);

  /** Runs `fn` once at a time; calls made meanwhile collapse into one more run afterwards. */
  function serial(fn) {
    let busy = false, again = false;
    return async function run() {
      if (busy) { again = true; return; }
      busy = true;
      try { await fn(); } finally {
        busy = false;
        if (again) { again = false; run(); }
      }
    };
  }

  // Live updates: one EventSource for the whole app. The server sends the store's change
  // counter on connect and after every change; a new value means "fetch what is on screen".
  const live = { source: null, version: null, timer: 0, pending: false, retry: 0 };

  function setLive(state, text) {
    liveBadge.dataset.live = state;
    liveBadge.textContent = text;
  }

  function connectLive() {
    if (typeof EventSource === 'undefined') { setLive('closed', 'no live updates'); return; }
    if (live.source) return;
    const es = new EventSource('/api/events');
    live.source = es;
    es.addEventListener('open', function () { setLive('open', 'live'); });
    es.addEventListener('change', function (e) {
      setLive('open', 'live');
      let v = null;
      try { v = JSON.parse(e.data).version; } catch (err) { v = e.data; }
      const first = live.version === null;
      if (!first && v === live.version) return;
      live.version = v;
      if (!first) scheduleRefresh();
    });
    es.addEventListener('error', function () {
      if (es.readyState === EventSource.CLOSED) {
        setLive('closed', 'disconnected');
        es.close();
        if (live.source === es) live.source = null;
        clearTimeout(live.retry);
        live.retry = setTimeout(function () { if (!live.source && !document.hidden) connectLive(); }, 5000);
      } else {
        setLive('reconnecting', 'reconnecting…');
      }
    });
  }

  function scheduleRefresh() {
    clearTimeout(live.timer);
    live.timer = setTimeout(function () {
      if (document.hidden) { live.pending = true; return; }
      if (current && current.refresh) current.refresh();
    }, 250);
  }
  // A browser keeps at most six HTTP/1.1 connections per server, and every open tab's event
  // stream holds one; a tab that stays hidden lets go of its stream and asks again (and catches
  // up, through the version number) when it is shown.
  let hiddenTimer = 0;
  document.addEventListener('visibilitychange', function () {
    clearTimeout(hiddenTimer);
    if (document.hidden) {
      hiddenTimer = setTimeout(function () {
        if (live.source) { live.source.close(); live.source = null; clearTimeout(live.retry); setLive('closed', 'paused'); }
      }, 30000);
      return;
    }
    if (!live.source) connectLive();
    if (live.pending) { live.pending = false; if (current && current.refresh) current.refresh(); }
  });

  // One ticker keeps relative times and running clocks current.
  let tickCount = 0;
  setInterval(function () {
    tickCount++;
    if (tickCount % 10 === 0) {
      for (const el of app.querySelectorAll('[data-rel]')) el.textContent = fmtRel(Number(el.dataset.rel));
    }
    for (const el of app.querySelectorAll('[data-since]')) el.textContent = fmtMs(Date.now() - Number(el.dataset.since)) + '…';
    if (current && current.tick) current.tick();
  }, 1000);

  // ---------------------------------------------------------------------------------------
  // Page 1: the trace list.

  const LIST_KEYS = ['search', 'workflow', 'group', 'status', 'since', 'from', 'until', 'limit'];
  const DEFAULT_LIMIT = 100;
  const SINCE_PRESETS = ['15m', '1h', '24h', '7d'];
  const knownWorkflows = new Set();

  function readFilters(search) {
    const q = new URLSearchParams(search);
    const f = { meta: q.getAll('meta').filter(Boolean) };
    for (const k of LIST_KEYS) f[k] = (q.get(k) || '').trim();
    return f;
  }

  /** The query string of a filter: the same keys for the page's URL and for /api/traces. */
  function filterQuery(f, forApi) {
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

  const hasFilters = (f) => !!(f.search || f.workflow || f.group || f.status || f.since || f.from || f.until || f.meta.length);

  /** RFC 3339 → the value of a datetime-local input (local time). */
  function toLocalInput(iso) {
    const ms = parseMs(iso);
    if (!isFinite(ms)) return '';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  function fromLocalInput(v) {
    if (!v) return '';
    const d = new Date(v);
    return isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z');
  }

  function listPage() {
    document.title = 'Traces — agentrace';
    setCrumbs([{ text: 'Traces' }]);
    let filters = readFilters(location.search);
    let traces = null;
    let seen = null; // ids in the last rendering, to mark new rows
    const checked = []; // up to two trace ids, in the order they were ticked
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

    const form = h('form', { class: 'filters card', autocomplete: 'off', onsubmit: function (e) { e.preventDefault(); apply(fromControls()); } },
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
        presets.appendChild(h('button', { type: 'button', 'aria-pressed': on ? 'true' : 'false', dataset: { since: p },
          onclick: function () { apply(Object.assign(fromControls(), { since: p, from: '', until: '' })); } }, p || 'Any'));
      });
      clearBtn.disabled = !hasFilters(filters);
    }

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

    function toggleCheck(id, on) {
      const at = checked.indexOf(id);
      if (on && at < 0) {
        checked.push(id);
        if (checked.length > 2) checked.shift();
      } else if (!on && at >= 0) {
        checked.splice(at, 1);
      }
      for (const tr of body.querySelectorAll('tr[data-trace-id]')) {
        const isOn = checked.indexOf(tr.dataset.traceId) >= 0;
        tr.classList.toggle('checked', isOn);
        const box = tr.querySelector('input[type="checkbox"]');
        if (box) box.checked = isOn;
      }
      updateCompare();
    }

    function row(t, fresh) {
      const started = parseMs(t.started_at);
      const running = t.status === 'running';
      const box = h('input', { type: 'checkbox', 'aria-label': 'Select ' + t.name + ' for comparison', checked: checked.indexOf(t.trace_id) >= 0,
        onchange: function (e) { toggleCheck(t.trace_id, e.target.checked); } });
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
        h('td', { class: 'c-cost num' }, fmtCost(t.cost_usd)));
      tr.addEventListener('click', function (e) {
        if (e.target.closest('a, input, button, label')) return;
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

  // ---------------------------------------------------------------------------------------
  // The trace model shared by the trace, conversation and diff pages.

  /** Indexes a trace's spans: parent/children/depth in tree order, times in µs. */
  function buildModel(t, nowUs) {
    const spans = Array.isArray(t.spans) ? t.spans : [];
    const n = spans.length;
    const byId = new Map();
    for (let i = 0; i < n; i++) byId.set(spans[i].span_id, i);
    const parent = new Int32Array(n), depth = new Int32Array(n), order = new Int32Array(n);
    const start = new Float64Array(n), end = new Float64Array(n);
    const children = new Array(n);
    const roots = [];
    for (let i = 0; i < n; i++) children[i] = [];
    for (let i = 0; i < n; i++) {
      const s = spans[i];
      let p = s.parent_id === null || s.parent_id === undefined ? -1 : byId.get(s.parent_id);
      if (p === undefined || p === i) p = -1;
      parent[i] = p;
      if (p < 0) roots.push(i); else children[p].push(i);
      start[i] = parseUs(s.started_at);
      end[i] = s.ended_at ? parseUs(s.ended_at) : NaN;
    }
    // Depth-first, iteratively (10,000 nested spans must not overflow the stack); a span
    // caught in a parent cycle is never reached from a root, so it becomes one.
    const visited = new Uint8Array(n);
    let k = 0;
    const walk = function (r) {
      const stack = [r];
      depth[r] = 0;
      while (stack.length) {
        const i = stack.pop();
        if (visited[i]) continue;
        visited[i] = 1;
        order[k++] = i;
        const kids = children[i];
        for (let c = kids.length - 1; c >= 0; c--) { if (!visited[kids[c]]) { depth[kids[c]] = depth[i] + 1; stack.push(kids[c]); } }
      }
    };
    for (const r of roots) walk(r);
    for (let i = 0; i < n; i++) {
      if (!visited[i]) {
        if (parent[i] >= 0) { const p = parent[i]; children[p] = children[p].filter((c) => c !== i); parent[i] = -1; }
        roots.push(i);
        walk(i);
      }
    }
    // Subtree sizes (for "+N hidden"), children after parents in `order`, so go backwards.
    const size = new Int32Array(n);
    for (let j = n - 1; j >= 0; j--) { const i = order[j]; size[i] += 1; if (parent[i] >= 0) size[parent[i]] += size[i]; }
    const t0 = parseUs(t.started_at);
    let lo = isFinite(t0) ? t0 : Infinity, hi = t.ended_at ? parseUs(t.ended_at) : -Infinity;
    if (!isFinite(hi)) hi = -Infinity;
    const eventTimes = new Array(n);
    for (let i = 0; i < n; i++) {
      if (isFinite(start[i])) { if (start[i] < lo) lo = start[i]; if (start[i] > hi) hi = start[i]; }
      if (isFinite(end[i]) && end[i] > hi) hi = end[i];
      const evs = spans[i].events || [];
      const times = new Float64Array(evs.length);
      for (let e = 0; e < evs.length; e++) { times[e] = parseUs(evs[e].time); if (isFinite(times[e]) && times[e] > hi) hi = times[e]; }
      eventTimes[i] = times;
    }
    if (!isFinite(lo)) lo = isFinite(hi) ? hi : (nowUs || Date.now() * 1000);
    const staticHi = isFinite(hi) ? hi : lo;
    const model = { trace: t, spans: spans, n: n, byId: byId, parent: parent, depth: depth, order: order, children: children, roots: roots,
      size: size, start: start, end: end, eventTimes: eventTimes, lo: lo, staticHi: staticHi, hi: staticHi };
    updateHi(model, nowUs);
    return model;
  }

  function isRunning(t) { return t && t.status === 'running'; }

  /** The right end of the time axis: the last thing that happened, or now while running. */
  function updateHi(m, nowUs) {
    let hi = m.staticHi;
    if (isRunning(m.trace)) hi = Math.max(hi, nowUs || Date.now() * 1000);
    m.hi = Math.max(hi, m.lo + 1);
  }

  /** "Span paths" exactly as `agentrace diff` makes them: names from the root, `#k` for repeats. */
  function spanPaths(m) {
    const paths = new Array(m.n);
    const seen = new Map();
    for (let i = 0; i < m.n; i++) {
      const s = m.spans[i];
      const p = s.parent_id === null || s.parent_id === undefined ? undefined : m.byId.get(s.parent_id);
      const parent = p !== undefined && p < i ? p : -1;
      const key = parent + '\u0000' + s.name;
      const count = (seen.get(key) || 0) + 1;
      seen.set(key, count);
      let path = parent >= 0 ? paths[parent] + '/' : '';
      path += s.name;
      if (count > 1) path += '#' + count;
      paths[i] = path;
    }
    return paths;
  }

  /** The conversation view of a trace: the user's input and the final output. */
  function exchange(t) {
    const spans = Array.isArray(t.spans) ? t.spans : [];
    const text = function (v) {
      if (v === null || v === undefined) return null;
      if (typeof v === 'string') return v;
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) {
          const m = v[i];
          if (m && m.role === 'user') return messageText(m.content);
        }
      }
      return pretty(v);
    };
    const roots = spans.filter((s) => !s.parent_id);
    const kind = (s) => s.kind === 'agent' || s.kind === 'generation';
    let input = null, output = null;
    const firstIn = roots.find((s) => typeof s.attributes?.input === 'string' && kind(s))
      || roots.find((s) => s.attributes && s.attributes.input !== undefined)
      || spans.find((s) => kind(s) && s.attributes && s.attributes.input !== undefined);
    if (firstIn) input = text(firstIn.attributes.input);
    const withOut = (s) => s.attributes && (s.attributes.output !== undefined || s.attributes.stdout !== undefined);
    const byEnd = (a, b) => parseUs(b.ended_at || b.started_at) - parseUs(a.ended_at || a.started_at);
    const lastOut = roots.filter(withOut).sort(byEnd)[0] || spans.filter(withOut).sort(byEnd)[0];
    if (lastOut) output = text(lastOut.attributes.output !== undefined ? lastOut.attributes.output : lastOut.attributes.stdout);
    return { input: input, output: output };
  }

  function messageText(content) {
    if (content === null || content === undefined) return '';
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content.map(function (p) {
        if (typeof p === 'string') return p;
        if (p && typeof p.text === 'string') return p.text;
        if (p && p.type) return '[' + p.type + ']';
        return pretty(p);
      }).join('\n');
    }
    return pretty(content);
  }

  // ---------------------------------------------------------------------------------------
  // Page 2: one trace, as a waterfall with span details.

  const ROW = 24, OVERSCAN = 12, INDENT = 14;

  function tracePage(id) {
    document.title = 'Trace — agentrace';
    setCrumbs([{ text: 'Traces', href: '/' }, { text: id }]);
    app.className = 'fixed';
    let dead = false;
    let m = null; // the model
    const st = {
      collapsed: new Set(),      // span ids whose children are hidden
      selected: -1,              // span index
      rows: new Int32Array(0),   // visible span indexes, in tree order
      rowOf: new Int32Array(0),  // span index → row, or -1
      match: null,               // Uint8Array of find hits
      matches: [],
      matchAt: -1,
      drawn: '',
      labelW: 320,
      detailKey: '',
    };
    const wanted = new URLSearchParams(location.search).get('span');

    const head = h('header', { class: 'trace-head' }, h('div', { class: 'loading' }, 'Loading trace…'));
    const findInput = h('input', { type: 'search', placeholder: 'Find span  ( / )', 'aria-label': 'Find a span by name', autocomplete: 'off' });
    const found = h('span', { class: 'found' });
    const legend = h('span', { class: 'legend', 'aria-label': 'Span kinds' });
    const tools = h('div', { class: 'wf-tools' },
      h('button', { type: 'button', class: 'btn small', onclick: function () { setAll(false); } }, 'Expand all'),
      h('button', { type: 'button', class: 'btn small', onclick: function () { setAll(true); } }, 'Collapse all'),
      findInput, found, legend);
    const ticks = h('div', { class: 'ticks' });
    const axis = h('div', { class: 'wf-axis' }, h('div', { class: 'label-col' }, 'Span'), ticks);
    const grid = h('div', { class: 'wf-grid' });
    const rowsBox = h('div', { class: 'wf-rows' });
    const spacer = h('div', { class: 'wf-spacer' }, grid, rowsBox);
    const viewport = h('div', { class: 'wf-viewport', tabindex: '0', role: 'tree', 'aria-label': 'Spans' }, spacer);
    const waterfall = h('section', { class: 'waterfall', 'aria-label': 'Waterfall' }, tools, axis, viewport);
    const detail = h('aside', { class: 'detail', 'aria-label': 'Span details' });
    const split = h('div', { class: 'split' }, waterfall, detail);
    split.hidden = true;
    const page = h('div', { class: 'trace-page' }, head, split);
    app.appendChild(page);

    // ---- header
    function drawHeader() {
      const t = m.trace;
      document.title = (t.name || t.trace_id) + ' — agentrace';
      setCrumbs([{ text: 'Traces', href: '/' }].concat(t.group_id ? [{ text: t.group_id, href: groupPath(t.group_id) }] : []).concat([{ text: t.name || t.trace_id }]));
      const started = m.lo / 1000;
      const dd = function (label, value, title) {
        return h('div', null, h('dt', null, label), h('dd', { title: title || null }, value));
      };
      const running = isRunning(t);
      const facts = h('dl', { class: 'facts' },
        dd('workflow', t.workflow || '—'),
        t.group_id ? dd('group', link(groupPath(t.group_id), t.group_id)) : null,
        dd('started', [fmtLocal(parseMs(t.started_at)), ' ', h('span', { class: 'muted' }, '(', relTime(parseMs(t.started_at)), ')')]),
        t.ended_at ? dd('ended', fmtLocal(parseMs(t.ended_at)), fmtLocal(parseMs(t.ended_at), true)) : null,
        dd('duration', running && (t.duration_ms === null || t.duration_ms === undefined)
          ? h('span', { dataset: { since: String(started) } }, fmtMs(Date.now() - started) + '…') : fmtMs(t.duration_ms)),
        dd('spans', fmtInt(m.n)),
        dd('tokens', usageText(t.usage)),
        dd('cost', fmtCost(t.cost_usd)),
        dd('trace', h('code', { class: 'id' }, t.trace_id)));
      const present = new Set(m.spans.map((s) => s.kind));
      fill(legend, KINDS.filter((k) => present.has(k)).map((k) => h('span', null, h('i', { class: 'k-' + k }), k)));
      const meta = t.metadata && typeof t.metadata === 'object' ? Object.keys(t.metadata) : [];
      fill(head,
        h('div', { class: 'title' }, h('h1', null, t.name || t.trace_id), badge(t.status), h('span', { class: 'spacer' }),
          t.group_id ? link(groupPath(t.group_id), 'Conversation →', 'btn small') : null),
        facts,
        meta.length ? h('div', { class: 'metadata', 'aria-label': 'Metadata' }, meta.map(function (k) {
          const v = t.metadata[k];
          const text = typeof v === 'string' ? v : JSON.stringify(v);
          return h('span', { class: 'chip', title: k + '=' + text }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, text));
        })) : null,
        t.error ? errorBox(t.error) : null);
    }

    // ---- rows
    function flatten() {
      const rows = new Int32Array(m.n);
      const rowOf = new Int32Array(m.n).fill(-1);
      let r = 0;
      const stack = [];
      for (let i = m.roots.length - 1; i >= 0; i--) stack.push(m.roots[i]);
      while (stack.length) {
        const i = stack.pop();
        rowOf[i] = r;
        rows[r++] = i;
        if (!st.collapsed.has(m.spans[i].span_id)) {
          const kids = m.children[i];
          for (let c = kids.length - 1; c >= 0; c--) stack.push(kids[c]);
        }
      }
      st.rows = rows.subarray(0, r);
      st.rowOf = rowOf;
      spacer.style.height = (r * ROW) + 'px';
      waterfall.dataset.rows = String(r);
      waterfall.dataset.spans = String(m.n);
      st.drawn = '';
    }

    const pct = (us) => ((us - m.lo) / (m.hi - m.lo)) * 100;

    function rowEl(i, r) {
      const s = m.spans[i];
      const status = safeStatus(s.status);
      const kind = safeKind(s.kind);
      const kids = m.children[i].length;
      const collapsed = kids > 0 && st.collapsed.has(s.span_id);
      const div = h('div', {
        class: 'row ' + status + (i === st.selected ? ' selected' : '') + (st.match && st.match[i] ? ' match' : ''),
        role: 'treeitem', 'aria-level': String(m.depth[i] + 1), 'aria-selected': i === st.selected ? 'true' : 'false',
        'aria-expanded': kids ? String(!collapsed) : null,
        dataset: { i: String(i), spanId: s.span_id },
        title: s.kind + ' · ' + s.name + ' · ' + s.status + (s.duration_ms !== null && s.duration_ms !== undefined ? ' · ' + fmtMs(s.duration_ms) : ''),
      });
      div.style.top = (r * ROW) + 'px';
      const label = h('div', { class: 'label-col' });
      label.style.paddingLeft = (6 + m.depth[i] * INDENT) + 'px';
      label.appendChild(h('span', { class: 'toggle' + (kids ? ' has' : ''), dataset: kids ? { toggle: String(i) } : null, 'aria-hidden': 'true' }, kids ? (collapsed ? '▸' : '▾') : ''));
      label.appendChild(h('span', { class: 'kind k-' + kind }, s.kind));
      label.appendChild(h('span', { class: 'name' }, s.name));
      if (STATUS_MARK[status]) label.appendChild(h('span', { class: 'status-mark ' + status, title: s.status }, STATUS_MARK[status]));
      if (collapsed) label.appendChild(h('span', { class: 'count' }, '+' + (m.size[i] - 1)));
      div.appendChild(label);
      const track = h('div', { class: 'track' });
      const st0 = isFinite(m.start[i]) ? m.start[i] : m.lo;
      const en = isFinite(m.end[i]) ? m.end[i] : (status === 'running' || isRunning(m.trace) ? m.hi : st0);
      const left = Math.min(100, Math.max(0, pct(st0)));
      const width = Math.max(0, Math.min(100 - left, pct(en) - left));
      const bar = h('div', { class: 'bar k-' + kind + ' ' + status });
      bar.style.left = left + '%';
      bar.style.width = width + '%';
      track.appendChild(bar);
      const evs = s.events || [];
      const times = m.eventTimes[i];
      for (let e = 0; e < evs.length; e++) {
        if (!isFinite(times[e])) continue;
        const mark = h('div', { class: 'evt', title: evs[e].name + ' · +' + fmtMs((times[e] - m.lo) / 1000) });
        mark.style.left = pct(times[e]) + '%';
        track.appendChild(mark);
      }
      const durText = (s.duration_ms !== null && s.duration_ms !== undefined ? fmtMs(s.duration_ms) : (status === 'running' ? 'running' : '')) +
        (status !== 'ok' && status !== 'running' ? ' · ' + s.status : '');
      if (durText) {
        const dur = h('span', { class: 'dur' }, durText);
        if (left + width > 72) dur.style.right = 'calc(' + (100 - left) + '% + 5px)';
        else dur.style.left = 'calc(' + (left + width) + '% + 5px)';
        track.appendChild(dur);
      }
      div.appendChild(track);
      return div;
    }

    function drawRows(force) {
      if (!m) return;
      if (!st.rows.length) {
        rowsBox.replaceChildren(h('div', { class: 'wf-empty' }, isRunning(m.trace) ? 'No span has finished yet; spans appear here as they are written.' : 'This trace has no spans.'));
        st.drawn = '';
        return;
      }
      const height = viewport.clientHeight || 600;
      const top = viewport.scrollTop;
      const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
      const last = Math.min(st.rows.length, Math.ceil((top + height) / ROW) + OVERSCAN);
      const key = first + ':' + last;
      if (!force && key === st.drawn) return;
      st.drawn = key;
      const frag = document.createDocumentFragment();
      for (let r = first; r < last; r++) frag.appendChild(rowEl(st.rows[r], r));
      rowsBox.replaceChildren(frag);
    }

    // ---- time axis
    function niceStep(raw) {
      const p = Math.pow(10, Math.floor(Math.log10(raw)));
      const f = raw / p;
      return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
    }
    function layout() {
      const width = viewport.clientWidth || 800;
      const sb = viewport.offsetWidth - viewport.clientWidth;
      st.labelW = Math.round(Math.min(520, Math.max(220, width * 0.38)));
      waterfall.style.setProperty('--label-w', st.labelW + 'px');
      axis.style.paddingRight = Math.max(0, sb) + 'px';
      grid.style.left = st.labelW + 'px';
    }
    function drawAxis() {
      if (!m) return;
      const totalMs = (m.hi - m.lo) / 1000;
      const trackW = Math.max(100, (viewport.clientWidth || 800) - st.labelW - 16);
      const step = niceStep(totalMs / Math.max(2, Math.floor(trackW / 110)));
      ticks.replaceChildren();
      grid.replaceChildren();
      for (let k = 0, v = 0; v <= totalMs * 1.0001 && k < 100; k++, v = k * step) {
        const p = (v / totalMs) * 100;
        const label = h('span', { class: 'tick' + (k === 0 ? ' first' : '') }, k === 0 ? '0' : fmtMs(v));
        label.style.left = p + '%';
        if (p > 96) label.style.transform = 'translateX(-100%)';
        ticks.appendChild(label);
        const line = h('i');
        line.style.left = p + '%';
        grid.appendChild(line);
      }
    }

    // ---- selection, collapse, find
    function select(i, opts) {
      if (!m || i < 0 || i >= m.n) return;
      expandTo(i);
      st.selected = i;
      drawRows(true);
      drawDetail();
      if (!opts || opts.scroll !== false) scrollToRow(st.rowOf[i], opts && opts.center);
      // The address follows the selection, but not on every key press: browsers throttle
      // (and complain about) hundreds of history updates in a row.
      clearTimeout(urlTimer);
      const spanId = m.spans[i].span_id;
      urlTimer = setTimeout(function () {
        if (dead) return;
        const url = new URL(location.href);
        url.searchParams.set('span', spanId);
        history.replaceState(null, '', url.pathname + url.search);
      }, 300);
    }
    let urlTimer = 0;

    function expandTo(i) {
      let changed = false;
      for (let p = m.parent[i]; p >= 0; p = m.parent[p]) {
        if (st.collapsed.delete(m.spans[p].span_id)) changed = true;
      }
      if (changed) flatten();
    }

    function scrollToRow(r, center) {
      if (r < 0) return;
      const top = r * ROW, h0 = viewport.clientHeight;
      if (center && (top < viewport.scrollTop || top + ROW > viewport.scrollTop + h0)) viewport.scrollTop = Math.max(0, top - h0 / 2);
      else if (top < viewport.scrollTop) viewport.scrollTop = top;
      else if (top + ROW > viewport.scrollTop + h0) viewport.scrollTop = top + ROW - h0;
      drawRows(false);
    }

    function toggle(i, collapse) {
      if (!m.children[i].length) return;
      const id = m.spans[i].span_id;
      const now = collapse === undefined ? !st.collapsed.has(id) : collapse;
      if (now) st.collapsed.add(id); else st.collapsed.delete(id);
      flatten();
      drawRows(true);
    }

    function setAll(collapse) {
      st.collapsed.clear();
      if (collapse) for (let i = 0; i < m.n; i++) if (m.children[i].length) st.collapsed.add(m.spans[i].span_id);
      flatten();
      if (st.selected >= 0 && st.rowOf[st.selected] < 0) {
        let p = st.selected;
        while (m.parent[p] >= 0 && st.rowOf[p] < 0) p = m.parent[p];
        st.selected = p;
        drawDetail();
      }
      drawRows(true);
      if (st.selected >= 0) scrollToRow(st.rowOf[st.selected]);
    }

    let findTimer = 0;
    function runFind(jump) {
      const q = findInput.value.trim().toLowerCase();
      if (!m || !q) { st.match = null; st.matches = []; st.matchAt = -1; found.textContent = ''; drawRows(true); return; }
      const match = new Uint8Array(m.n);
      const matches = [];
      for (let j = 0; j < m.n; j++) {
        const i = m.order[j];
        const s = m.spans[i];
        if (String(s.name).toLowerCase().indexOf(q) >= 0 || s.span_id === q) { match[i] = 1; matches.push(i); }
      }
      st.match = match;
      st.matches = matches;
      st.matchAt = matches.length ? 0 : -1;
      found.textContent = matches.length ? '1 / ' + matches.length : 'no match';
      if (jump && matches.length) select(matches[0], { center: true }); else drawRows(true);
    }
    function stepFind(dir) {
      if (!st.matches.length) { runFind(true); return; }
      st.matchAt = (st.matchAt + dir + st.matches.length) % st.matches.length;
      found.textContent = (st.matchAt + 1) + ' / ' + st.matches.length;
      select(st.matches[st.matchAt], { center: true });
    }
    findInput.addEventListener('input', function () { clearTimeout(findTimer); findTimer = setTimeout(function () { runFind(true); }, 120); });
    findInput.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') { e.preventDefault(); clearTimeout(findTimer); if (!st.match) runFind(true); else stepFind(e.shiftKey ? -1 : 1); }
      else if (e.key === 'Escape') { findInput.value = ''; runFind(false); viewport.focus(); }
      else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); viewport.focus(); onKey(e); }
    });

    rowsBox.addEventListener('click', function (e) {
      const tg = e.target.closest('[data-toggle]');
      if (tg) { toggle(Number(tg.dataset.toggle)); return; }
      const r = e.target.closest('.row');
      if (r) { select(Number(r.dataset.i), { scroll: false }); viewport.focus({ preventScroll: true }); }
    });
    rowsBox.addEventListener('dblclick', function (e) {
      const r = e.target.closest('.row');
      if (r && !e.target.closest('[data-toggle]')) toggle(Number(r.dataset.i));
    });

    function onKey(e) {
      if (!m || !st.rows.length) return;
      const r = st.selected >= 0 ? st.rowOf[st.selected] : -1;
      const page = Math.max(1, Math.floor(viewport.clientHeight / ROW) - 1);
      let target = -1;
      switch (e.key) {
        case 'ArrowDown': case 'j': target = r < 0 ? 0 : Math.min(st.rows.length - 1, r + 1); break;
        case 'ArrowUp': case 'k': target = r < 0 ? 0 : Math.max(0, r - 1); break;
        case 'PageDown': target = Math.min(st.rows.length - 1, Math.max(0, r) + page); break;
        case 'PageUp': target = Math.max(0, r - page); break;
        case 'Home': target = 0; break;
        case 'End': target = st.rows.length - 1; break;
        case 'ArrowLeft': case 'h':
          if (st.selected < 0) return;
          if (m.children[st.selected].length && !st.collapsed.has(m.spans[st.selected].span_id)) toggle(st.selected, true);
          else if (m.parent[st.selected] >= 0) select(m.parent[st.selected]);
          e.preventDefault();
          return;
        case 'ArrowRight': case 'l':
          if (st.selected < 0) return;
          if (st.collapsed.has(m.spans[st.selected].span_id)) toggle(st.selected, false);
          else if (m.children[st.selected].length) select(m.children[st.selected][0]);
          e.preventDefault();
          return;
        case 'Enter': case ' ':
          if (st.selected >= 0) toggle(st.selected);
          e.preventDefault();
          return;
        default: return;
      }
      e.preventDefault();
      if (target >= 0) select(st.rows[target]);
    }

    function onDocKey(e) {
      if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
      const tag = e.target && e.target.tagName;
      if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || (e.target && e.target.isContentEditable)) return;
      if (e.key === '/') { e.preventDefault(); findInput.focus(); findInput.select(); return; }
      if (e.target && e.target.closest && e.target.closest('.detail') && (e.key === ' ' || e.key === 'Enter')) return;
      if (e.target && e.target.closest && e.target.closest('a, button, summary')) { if (e.key === 'Enter' || e.key === ' ') return; }
      onKey(e);
    }
    document.addEventListener('keydown', onDocKey);

    let scrollPending = false;
    viewport.addEventListener('scroll', function () {
      if (scrollPending) return;
      scrollPending = true;
      requestAnimationFrame(function () { scrollPending = false; drawRows(false); });
    });
    const resized = function () { if (!m) return; layout(); drawAxis(); drawRows(true); };
    window.addEventListener('resize', resized);

    // ---- span details
    function drawDetail() {
      const keep = detail.scrollTop;
      const i = st.selected;
      if (!m || i < 0) {
        detail.replaceChildren(h('div', { class: 'muted' }, m && m.n ? 'Select a span to see its details.' : ''));
        st.detailKey = '';
        delete detail.dataset.spanId;
        return;
      }
      const s = m.spans[i];
      // A live refresh redraws the details only when the span changed, so an open "Raw span
      // JSON" or the reader's scroll position survive.
      const key = s.span_id + '\u0000' + JSON.stringify(s) + '\u0000' + m.lo;
      if (key === st.detailKey) return;
      const sameSpan = detail.dataset.spanId === s.span_id;
      st.detailKey = key;
      detail.replaceChildren(spanDetail(m, i, select));
      detail.dataset.spanId = s.span_id;
      detail.scrollTop = sameSpan ? keep : 0;
    }

    // ---- loading and live refresh
    function setModel(trace, first) {
      const prevScroll = viewport.scrollTop;
      const prevSel = m && st.selected >= 0 ? m.spans[st.selected].span_id : null;
      m = buildModel(trace, Date.now() * 1000);
      split.hidden = false;
      drawHeader();
      flatten();
      layout();
      drawAxis();
      if (st.match) runFind(false);
      let sel = -1;
      const want = first ? wanted : prevSel;
      if (want && m.byId.has(want)) sel = m.byId.get(want);
      else if ((first || !prevSel) && m.n) sel = m.roots[0];
      st.selected = sel;
      if (sel >= 0) expandTo(sel);
      if (!first) viewport.scrollTop = prevScroll;
      drawRows(true);
      drawDetail();
      if (first) {
        if (sel >= 0 && want) scrollToRow(st.rowOf[sel], true);
      }
      app.dataset.spans = String(m.n);
    }

    let loaded = false;
    let fetchId = id; // `last` or a prefix at first; the full id once known, so it stays put
    const load = serial(async function () {
      try {
        const trace = await api('/api/traces/' + encodeURIComponent(fetchId));
        if (dead) return;
        if (trace && typeof trace.trace_id === 'string') fetchId = trace.trace_id;
        setModel(trace, !loaded);
        loaded = true;
        app.dataset.loaded = trace.trace_id;
        setState('ready');
      } catch (e) {
        if (dead) return;
        if (loaded && e.status !== 404) return; // keep what is on screen through a passing failure
        m = null;
        loaded = false;
        split.hidden = true;
        head.replaceChildren(errorNotice(e, 'the trace'));
        setState('error');
      }
    });
    load();

    return {
      refresh: function () { if (!loaded || (m && isRunning(m.trace))) load(); },
      tick: function () {
        if (!m || !isRunning(m.trace)) return;
        updateHi(m, Date.now() * 1000);
        drawAxis();
        drawRows(true);
      },
      destroy: function () {
        dead = true;
        clearTimeout(urlTimer);
        document.removeEventListener('keydown', onDocKey);
        window.removeEventListener('resize', resized);
      },
    };
  }
  tracePage.pageName = 'trace';

  function errorBox(err) {
    const data = err && err.data && typeof err.data === 'object' && Object.keys(err.data).length ? err.data : null;
    return h('div', { class: 'error-box', role: 'alert' }, String(err && err.message !== undefined ? err.message : pretty(err)),
      data ? h('pre', null, pretty(data)) : null);
  }

  function kvTable(obj, keys) {
    const table = h('table', { class: 'kv' });
    for (const k of keys || Object.keys(obj)) {
      const v = obj[k];
      const simple = v === null || typeof v !== 'object';
      table.appendChild(h('tr', null, h('td', { class: 'k' }, k),
        h('td', null, simple && typeof v !== 'string' ? h('code', null, String(v)) : h('pre', null, pretty(v)))));
    }
    return table;
  }

  function section(title, extra) {
    return h('h3', null, title, extra ? h('span', { class: 'muted' }, extra) : null);
  }

  function toolCallsEl(calls) {
    let list = calls;
    if (typeof list === 'string') { try { list = JSON.parse(list); } catch (e) { return h('pre', null, list); } }
    if (!Array.isArray(list)) return h('pre', null, pretty(list));
    return list.map(function (c) {
      const fn = c && c.function ? c.function : c || {};
      return h('div', { class: 'call' },
        h('div', { class: 'fn' }, 'call ', String(fn.name || '?'), c && c.id ? h('span', { class: 'muted' }, '  ' + c.id) : null),
        fn.arguments !== undefined ? h('pre', null, pretty(fn.arguments)) : null);
    });
  }

  function messageEl(msg) {
    if (!msg || typeof msg !== 'object') return h('div', { class: 'msg' }, h('div', { class: 'text' }, pretty(msg)));
    const role = String(msg.role || (msg.type ? msg.type : 'message'));
    const cls = ['system', 'user', 'assistant', 'tool', 'developer'].indexOf(role) >= 0 ? role : '';
    const text = messageText(msg.content);
    return h('div', { class: 'msg ' + cls },
      h('div', { class: 'role' }, role, msg.name ? h('span', { class: 'muted' }, String(msg.name)) : null,
        msg.tool_call_id ? h('span', { class: 'muted' }, 'for ' + msg.tool_call_id) : null),
      text !== '' ? h('div', { class: 'text' }, text) : null,
      msg.tool_calls ? toolCallsEl(msg.tool_calls) : null);
  }

  function chatEl(v, defaultRole) {
    if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === 'object' && (x.role || x.type))) {
      return h('div', { class: 'chat' }, v.map(messageEl));
    }
    return h('div', { class: 'chat' }, messageEl({ role: defaultRole, content: typeof v === 'string' ? v : pretty(v) }));
  }

  function shellQuote(arg) {
    const s = String(arg);
    return /^[\w@%+=:,./-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
  }

  /** The detail pane of span `i`: facts, error, readable input/output, events, attributes. */
  function spanDetail(m, i, select) {
    const s = m.spans[i];
    const a = s.attributes && typeof s.attributes === 'object' ? s.attributes : {};
    const used = new Set();
    const box = document.createDocumentFragment();
    box.appendChild(h('div', { class: 'd-title' }, kindChip(s.kind), h('h2', null, s.name), badge(s.status)));

    const facts = h('table', { class: 'kv' });
    const fact = function (k, v) { if (v !== null && v !== undefined) facts.appendChild(h('tr', null, h('td', { class: 'k' }, k), h('td', null, v))); };
    fact('duration', s.duration_ms !== null && s.duration_ms !== undefined ? fmtMs(s.duration_ms) : (s.status === 'running' ? 'running' : '—'));
    if (isFinite(m.start[i])) fact('started', '+' + fmtMs((m.start[i] - m.lo) / 1000) + '  ·  ' + fmtLocal(m.start[i] / 1000, true));
    if (isFinite(m.end[i])) fact('ended', '+' + fmtMs((m.end[i] - m.lo) / 1000) + '  ·  ' + fmtLocal(m.end[i] / 1000, true));
    fact('span id', h('code', null, s.span_id));
    if (m.parent[i] >= 0) {
      const p = m.parent[i];
      fact('parent', h('a', { href: '#', onclick: function (e) { e.preventDefault(); select(p); } }, m.spans[p].name));
    }
    if (m.children[i].length) fact('children', plural(m.children[i].length, 'span') + (m.size[i] - 1 > m.children[i].length ? ' (' + fmtInt(m.size[i] - 1) + ' below)' : ''));
    const factKeys = s.kind === 'generation'
      ? ['model', 'response_model', 'finish_reason', 'usage', 'cost_usd', 'time_to_first_token_ms', 'queued_ms', 'stream', 'offline', 'replayed', 'usage_estimated']
      : s.kind === 'agent' ? ['agent', 'model', 'step_id', 'usage', 'session']
        : s.kind === 'function' ? ['tool', 'call_id', 'exit_code', 'pid']
          : s.kind === 'command' ? ['step_id', 'exit_code', 'pid'] : ['step_id'];
    for (const k of factKeys) {
      if (a[k] === undefined) continue;
      used.add(k);
      if (k === 'usage' && a[k] && typeof a[k] === 'object') fact('tokens', usageText(a[k]));
      else if (k === 'cost_usd') fact('cost', fmtCost(a[k]));
      else if (k === 'time_to_first_token_ms' || k === 'queued_ms') fact(k.replace(/_ms$/, '').replace(/_/g, ' '), fmtMs(a[k]));
      else fact(k.replace(/_/g, ' '), typeof a[k] === 'object' ? h('code', null, JSON.stringify(a[k])) : String(a[k]));
    }
    box.appendChild(facts);

    if (s.error) { box.appendChild(section('Error')); box.appendChild(errorBox(s.error)); }
    if (a.skip_reason !== undefined) { used.add('skip_reason'); box.appendChild(section('Skipped')); box.appendChild(h('div', { class: 'msg' }, h('div', { class: 'text' }, String(a.skip_reason)))); }

    if (s.kind === 'generation' || s.kind === 'agent') {
      if (a.input !== undefined) {
        used.add('input');
        box.appendChild(section('Input', Array.isArray(a.input) ? plural(a.input.length, 'message') : null));
        box.appendChild(chatEl(a.input, 'user'));
      }
      if (a.output !== undefined || a.tool_calls !== undefined) {
        used.add('output'); used.add('tool_calls');
        box.appendChild(section('Output'));
        const out = { role: 'assistant', content: a.output === undefined ? '' : (typeof a.output === 'string' ? a.output : pretty(a.output)) };
        if (a.tool_calls !== undefined) out.tool_calls = a.tool_calls;
        box.appendChild(Array.isArray(a.output) ? chatEl(a.output, 'assistant') : h('div', { class: 'chat' }, messageEl(out)));
      }
      if (a.session_messages !== undefined && a.session_messages !== 0 && !(Array.isArray(a.session_messages) && !a.session_messages.length)) {
        used.add('session_messages');
        box.appendChild(section('Earlier in the session', typeof a.session_messages === 'number' ? plural(a.session_messages, 'message') : null));
        box.appendChild(typeof a.session_messages === 'number' ? h('div', { class: 'muted' }, plural(a.session_messages, 'earlier message') + ' sent before this input.') : chatEl(a.session_messages, 'user'));
      }
      if (Array.isArray(a.tools)) {
        used.add('tools');
        box.appendChild(section('Tools offered'));
        box.appendChild(h('div', { class: 'metadata' }, a.tools.map((t) => h('span', { class: 'chip' }, typeof t === 'string' ? t : pretty(t)))));
      }
    }
    if (s.kind === 'handoff' && (a.from_agent !== undefined || a.to_agent !== undefined)) {
      used.add('from_agent'); used.add('to_agent');
      box.appendChild(section('Handoff'));
      box.appendChild(h('div', { class: 'handoff-flow' }, String(a.from_agent !== undefined ? a.from_agent : '?'), h('span', { class: 'muted' }, '→'), String(a.to_agent !== undefined ? a.to_agent : '?')));
    }
    if (s.kind === 'function' || s.kind === 'command' || a.argv !== undefined || a.script !== undefined) {
      if (s.kind === 'function' && a.input !== undefined) { used.add('input'); box.appendChild(section('Arguments')); box.appendChild(h('pre', { class: 'json' }, pretty(a.input))); }
      if (s.kind === 'function' && a.output !== undefined) { used.add('output'); box.appendChild(section('Result')); box.appendChild(h('pre', { class: 'json' }, pretty(a.output))); }
      if (a.argv !== undefined) {
        used.add('argv');
        box.appendChild(section(s.kind === 'function' ? 'Tool command' : 'Command', 'argv, no shell'));
        box.appendChild(h('div', { class: 'cmdline' }, Array.isArray(a.argv) ? a.argv.map(shellQuote).join(' ') : String(a.argv)));
      }
      if (a.script !== undefined) { used.add('script'); box.appendChild(section('Script', 'sh -c')); box.appendChild(h('div', { class: 'cmdline' }, String(a.script))); }
      if (Array.isArray(a.env)) { used.add('env'); box.appendChild(section('Environment', 'names of templated variables')); box.appendChild(h('div', { class: 'metadata' }, a.env.map((v) => h('span', { class: 'chip' }, String(v))))); }
      if (s.kind === 'command' && a.input !== undefined) { used.add('input'); box.appendChild(section('Input')); box.appendChild(h('pre', { class: 'json' }, pretty(a.input))); }
      if (s.kind === 'command' && a.output !== undefined) { used.add('output'); box.appendChild(section('Output')); box.appendChild(h('pre', { class: 'json' }, pretty(a.output))); }
      for (const k of ['stdout', 'stderr', 'stderr_tail']) {
        if (a[k] === undefined) continue;
        used.add(k);
        box.appendChild(section(k === 'stderr_tail' ? 'stderr (tail)' : k));
        box.appendChild(h('pre', { class: 'stream' + (k === 'stdout' ? '' : ' stderr') }, typeof a[k] === 'string' ? a[k] : pretty(a[k])));
      }
    }
    if (s.kind === 'custom' || s.kind === 'handoff') {
      for (const k of ['input', 'output']) {
        if (a[k] === undefined || used.has(k)) continue;
        used.add(k);
        box.appendChild(section(k === 'input' ? 'Input' : 'Output'));
        box.appendChild(h('pre', { class: 'json' }, pretty(a[k])));
      }
    }

    const evs = Array.isArray(s.events) ? s.events : [];
    box.appendChild(section('Events', evs.length ? String(evs.length) : 'none'));
    if (evs.length) {
      box.appendChild(h('div', { class: 'events' }, evs.map(function (e, k) {
        const t = m.eventTimes[i][k];
        const attrs = e.attributes && typeof e.attributes === 'object' ? e.attributes : {};
        return h('div', { class: 'event' },
          h('div', { class: 'e-head' }, h('span', { class: 'e-name' }, String(e.name)),
            isFinite(t) ? h('span', { class: 'e-time', title: fmtLocal(t / 1000, true) }, '+' + fmtMs((t - m.lo) / 1000)) : null),
          Object.keys(attrs).length ? kvTable(attrs) : null);
      })));
    }

    const rest = Object.keys(a).filter((k) => !used.has(k));
    box.appendChild(section('Attributes', rest.length ? null : (Object.keys(a).length ? 'all shown above' : 'none')));
    if (rest.length) box.appendChild(kvTable(a, rest));
    box.appendChild(h('details', { class: 'raw' }, h('summary', null, 'Raw span JSON'), h('pre', { class: 'json' }, JSON.stringify(s, null, 2))));
    return box;
  }

  // ---------------------------------------------------------------------------------------
  // Page 3: a conversation (the traces of one group).

  function groupPage(group) {
    document.title = group + ' — conversation — agentrace';
    setCrumbs([{ text: 'Traces', href: '/' }, { text: 'Conversation ' + group }]);
    let dead = false;
    const root = h('div', { class: 'page convo' }, h('div', { class: 'loading' }, 'Loading conversation…'));
    app.appendChild(root);

    function draw(traces) {
      traces = traces.slice().sort((x, y) => parseUs(x.started_at) - parseUs(y.started_at));
      const first = traces.length ? parseMs(traces[0].started_at) : NaN;
      let lastEnd = -Infinity, tokens = 0, cost = null, errors = 0, running = 0;
      for (const t of traces) {
        const e = t.ended_at ? parseMs(t.ended_at) : parseMs(t.started_at);
        if (e > lastEnd) lastEnd = e;
        tokens += totalTokens(t.usage);
        if (typeof t.cost_usd === 'number') cost = (cost || 0) + t.cost_usd;
        if (t.status === 'error') errors++;
        if (t.status === 'running') running++;
      }
      const headFacts = h('dl', { class: 'facts' },
        h('div', null, h('dt', null, 'traces'), h('dd', null, fmtInt(traces.length))),
        isFinite(first) ? h('div', null, h('dt', null, 'started'), h('dd', null, fmtLocal(first), ' ', h('span', { class: 'muted' }, '(', relTime(first), ')'))) : null,
        isFinite(first) && isFinite(lastEnd) ? h('div', null, h('dt', null, 'over'), h('dd', null, fmtGap(lastEnd - first))) : null,
        h('div', null, h('dt', null, 'tokens'), h('dd', null, fmtInt(tokens))),
        h('div', null, h('dt', null, 'cost'), h('dd', null, fmtCost(cost))),
        h('div', null, h('dt', null, 'status'), h('dd', null, errors ? badge('error') : running ? badge('running') : badge('ok'),
          errors ? h('span', { class: 'muted' }, ' ' + plural(errors, 'trace') + ' failed') : null)));
      const items = [h('div', { class: 'card convo-head' }, h('h1', null, 'Conversation ', h('code', null, group)), headFacts)];
      let prevEnd = NaN;
      traces.forEach(function (t, k) {
        const start = parseMs(t.started_at);
        if (k > 0) {
          const gap = isFinite(prevEnd) ? start - prevEnd : NaN;
          items.push(h('div', { class: 'gap' }, isFinite(gap) ? (gap >= 0 ? fmtGap(gap) + ' later' : 'overlapping the previous one') : ''));
        }
        prevEnd = t.ended_at ? parseMs(t.ended_at) : start;
        const ex = exchange(t);
        const running = isRunning(t);
        items.push(h('article', { class: 'card turn', dataset: { traceId: t.trace_id } },
          h('div', { class: 'turn-head' },
            h('span', { class: 'faint' }, '#' + (k + 1)),
            h('a', { href: tracePath(t.trace_id), 'data-nav': true, class: 't-name' }, t.name || t.trace_id),
            badge(t.status), h('span', { class: 'spacer' }),
            h('span', { class: 'stat', title: fmtLocal(start, true) }, fmtLocal(start)),
            h('span', { class: 'stat' }, running && (t.duration_ms === null || t.duration_ms === undefined) ? h('span', { dataset: { since: String(start) } }, fmtMs(Date.now() - start) + '…') : fmtMs(t.duration_ms)),
            h('span', { class: 'stat', title: usageText(t.usage) }, fmtInt(totalTokens(t.usage)) + ' tokens'),
            h('span', { class: 'stat' }, fmtCost(t.cost_usd))),
          agentsLine(t),
          h('div', { class: 'bubbles' },
            ex.input !== null ? h('div', { class: 'bubble user' }, h('span', { class: 'who' }, 'user'), ex.input) : null,
            ex.output !== null ? h('div', { class: 'bubble assistant' }, h('span', { class: 'who' }, 'output'), ex.output)
              : h('div', { class: 'bubble none' }, running ? 'still running…' : 'no output recorded'),
            t.error ? errorBox(t.error) : null)));
      });
      root.replaceChildren.apply(root, items);
      app.dataset.count = String(traces.length);
    }

    const load = serial(async function () {
      try {
        const traces = await api('/api/groups/' + encodeURIComponent(group));
        if (dead) return;
        draw(Array.isArray(traces) ? traces : []);
        app.dataset.loaded = group;
        setState('ready');
      } catch (e) {
        if (dead) return;
        root.replaceChildren(errorNotice(e, 'the conversation'));
        setState('error');
      }
    });
    load();
    return { refresh: load, destroy: function () { dead = true; } };
  }
  groupPage.pageName = 'group';

  /** "triage → billing · 2 model calls · 1 tool call": who worked on a turn. */
  function agentsLine(t) {
    const spans = Array.isArray(t.spans) ? t.spans : [];
    const agents = [];
    let calls = 0, tools = 0, commands = 0;
    for (const s of spans) {
      if (s.kind === 'agent' && agents[agents.length - 1] !== s.name) agents.push(s.name);
      else if (s.kind === 'generation') calls++;
      else if (s.kind === 'function') tools++;
      else if (s.kind === 'command') commands++;
    }
    const parts = [];
    if (agents.length) parts.push(agents.join(' → '));
    if (calls) parts.push(plural(calls, 'model call'));
    if (tools) parts.push(plural(tools, 'tool call'));
    if (commands) parts.push(plural(commands, 'command'));
    return parts.length ? h('div', { class: 'turn-agents' }, parts.join(' · ')) : null;
  }

  // ---------------------------------------------------------------------------------------
  // Page 4: two traces side by side.

  function diffPage() {
    document.title = 'Diff — agentrace';
    setCrumbs([{ text: 'Traces', href: '/' }, { text: 'Diff' }]);
    const q = new URLSearchParams(location.search);
    const a = (q.get('a') || '').trim(), b = (q.get('b') || '').trim();
    let dead = false;
    const root = h('div', { class: 'page' });
    app.appendChild(root);
    if (!a || !b) {
      root.appendChild(h('div', { class: 'notice' }, 'Pick two traces to compare: tick two rows on ', link('/', 'the trace list'), ' and press “Compare”, or open ', h('code', null, '/diff?a=<trace id>&b=<trace id>'), '.'));
      setState('ready');
      return { destroy: function () { dead = true; } };
    }
    root.appendChild(h('div', { class: 'loading' }, 'Comparing…'));
    let running = false;

    const load = serial(async function () {
      let d, ta = null, tb = null;
      try {
        const got = await Promise.all([
          api('/api/diff?' + new URLSearchParams({ a: a, b: b, content: 'true' }).toString()),
          api('/api/traces/' + encodeURIComponent(a)).catch(() => null),
          api('/api/traces/' + encodeURIComponent(b)).catch(() => null),
        ]);
        d = got[0]; ta = got[1]; tb = got[2];
      } catch (e) {
        if (dead) return;
        root.replaceChildren(errorNotice(e, 'the diff'));
        setState('error');
        return;
      }
      if (dead) return;
      running = isRunning(ta) || isRunning(tb);
      root.replaceChildren(drawDiff(d, ta, tb));
      app.dataset.loaded = a + ' ' + b;
      setState('ready');
    });
    load();
    return { refresh: function () { if (running) load(); }, destroy: function () { dead = true; } };
  }
  diffPage.pageName = 'diff';

  function fmtPct(p) {
    const a = Math.abs(p);
    return a >= 1000 ? Math.round(p).toLocaleString('en-US') : a >= 100 ? p.toFixed(0) : p.toFixed(1);
  }

  function deltaEl(delta, unit, pctValue, fmt) {
    if (delta === null || delta === undefined || !isFinite(delta)) return h('span', { class: 'delta-zero' }, '—');
    const cls = delta > 0 ? 'delta-up' : delta < 0 ? 'delta-down' : 'delta-zero';
    const text = (delta > 0 ? '+' : '') + fmt(delta) + (unit || '') + (pctValue !== null && pctValue !== undefined && isFinite(pctValue) && delta !== 0 ? ' (' + (pctValue > 0 ? '+' : '') + fmtPct(pctValue) + '%)' : '');
    return h('span', { class: cls }, text);
  }

  function drawDiff(d, ta, tb) {
    const frag = document.createDocumentFragment();
    const A = d.a || {}, B = d.b || {};
    document.title = 'Diff: ' + (A.name || A.trace_id) + ' ↔ ' + (B.name || B.trace_id) + ' — agentrace';
    const sideCard = function (label, s, t) {
      return h('div', { class: 'card side' },
        h('div', { class: 's-label' }, label),
        h('div', { class: 's-name' }, link(tracePath(s.trace_id), s.name || s.trace_id), ' ', badge(s.status)),
        h('dl', { class: 'facts' },
          h('div', null, h('dt', null, 'workflow'), h('dd', null, s.workflow || '—')),
          t && t.started_at ? h('div', null, h('dt', null, 'started'), h('dd', null, fmtLocal(parseMs(t.started_at)))) : null,
          h('div', null, h('dt', null, 'duration'), h('dd', null, fmtMs(s.duration_ms))),
          h('div', null, h('dt', null, 'tokens'), h('dd', null, fmtInt(s.tokens))),
          h('div', null, h('dt', null, 'cost'), h('dd', null, fmtCost(s.cost_usd))),
          h('div', null, h('dt', null, 'id'), h('dd', null, h('code', { class: 'id' }, s.trace_id)))));
    };
    frag.appendChild(h('div', { class: 'page-title' }, h('h1', null, 'Diff'),
      h('a', { href: diffPath(B.trace_id || '', A.trace_id || ''), 'data-nav': true, class: 'btn small' }, 'Swap A ⇄ B')));
    frag.appendChild(h('div', { class: 'diff-sides' }, sideCard('A', A, ta), sideCard('B', B, tb)));

    const T = d.totals || {};
    const tot = function (label, content) { return h('div', { class: 't' }, h('span', { class: 'l' }, label), h('span', { class: 'v' }, content)); };
    const dur = T.duration_ms || {}, tok = T.tokens || {}, cost = T.cost_usd || {}, stat = T.status || {};
    frag.appendChild(h('div', { class: 'card totals' },
      tot('status', [badge(stat.a), ' → ', badge(stat.b)]),
      tot('duration', [fmtMs(dur.a), ' → ', fmtMs(dur.b), '  ', deltaEl(dur.delta, '', dur.pct, fmtMs)]),
      tot('tokens', [fmtInt(tok.a), ' → ', fmtInt(tok.b), '  ', deltaEl(tok.delta, '', null, fmtInt)]),
      tot('cost', [fmtCost(cost.a), ' → ', fmtCost(cost.b), '  ', deltaEl(cost.delta, '', null, fmtCost)])));

    // Rows: B's spans in tree order with A's spans that B lacks slotted in where A had them.
    const matched = new Map(), added = new Map(), removed = new Map();
    for (const s of d.matched || []) matched.set(s.path, s);
    for (const s of d.added || []) added.set(s.path, s);
    for (const s of d.removed || []) removed.set(s.path, s);
    const ma = ta ? buildModel(ta) : null, mb = tb ? buildModel(tb) : null;
    const rows = [];
    if (ma && mb) {
      const pa = spanPaths(ma), pb = spanPaths(mb);
      const aIndex = new Map(pa.map((p, i) => [p, i]));
      const bSet = new Set(pb);
      const aOrder = Array.from(ma.order), bOrder = Array.from(mb.order);
      const aPos = new Int32Array(ma.n);
      aOrder.forEach((i, k) => { aPos[i] = k; });
      let at = 0;
      const flushA = function (upto) {
        for (; at < upto; at++) {
          const ia = aOrder[at];
          if (!bSet.has(pa[ia])) rows.push({ path: pa[ia], ia: ia, ib: -1 });
        }
      };
      for (const ib of bOrder) {
        const p = pb[ib];
        const ia = aIndex.has(p) ? aIndex.get(p) : -1;
        if (ia >= 0 && aPos[ia] >= at) { flushA(aPos[ia]); at = aPos[ia] + 1; }
        rows.push({ path: p, ia: ia, ib: ib });
      }
      flushA(aOrder.length);
    } else {
      for (const s of d.matched || []) rows.push({ path: s.path, ia: -1, ib: -1 });
      for (const s of d.added || []) rows.push({ path: s.path, ia: -1, ib: -1 });
      for (const s of d.removed || []) rows.push({ path: s.path, ia: -1, ib: -1 });
    }
    // Classify every row first; DOM rows are built in pages, because laying out a table of
    // 10,000 spans would freeze the page for seconds.
    let nAdded = 0, nRemoved = 0, nChanged = 0, nMatched = 0, nDiffer = 0;
    const items = [];
    for (const r of rows) {
      const mt = matched.get(r.path), ad = added.get(r.path), rm = removed.get(r.path);
      let it;
      if (mt) {
        nMatched++;
        const stA = mt.status ? mt.status.a : null, stB = mt.status ? mt.status.b : null;
        const changed = stA !== stB;
        if (changed) nChanged++;
        it = { r: r, mt: mt, kind: mt.kind, mark: changed ? '~' : '', cls: changed ? 'changed' : 'same',
          sa: { kind: mt.kind, status: stA, duration_ms: mt.duration_ms ? mt.duration_ms.a : null, tokens: mt.tokens ? mt.tokens.a : 0 },
          sb: { kind: mt.kind, status: stB, duration_ms: mt.duration_ms ? mt.duration_ms.b : null, tokens: mt.tokens ? mt.tokens.b : 0 },
          differs: changed || !!mt.output_diff || !!(mt.tokens && mt.tokens.delta) };
      } else if (ad) {
        nAdded++;
        it = { r: r, ad: ad, kind: ad.kind, mark: '+', cls: 'added absent-a', sa: null, sb: ad, differs: true };
      } else if (rm) {
        nRemoved++;
        it = { r: r, rm: rm, kind: rm.kind, mark: '−', cls: 'removed absent-b', sa: rm, sb: null, differs: true };
      } else {
        continue;
      }
      if (it.differs) nDiffer++;
      items.push(it);
    }

    const miniBar = function (mm, i, side) {
      const wrap = h('div', { class: 'mini' });
      if (!mm || i < 0 || !side) return wrap;
      const st0 = isFinite(mm.start[i]) ? mm.start[i] : mm.lo;
      const en = isFinite(mm.end[i]) ? mm.end[i] : mm.hi;
      const left = ((st0 - mm.lo) / (mm.hi - mm.lo)) * 100;
      const width = Math.max(0, ((en - st0) / (mm.hi - mm.lo)) * 100);
      const bar = h('div', { class: 'bar k-' + safeKind(side.kind) + ' ' + safeStatus(side.status) });
      bar.style.left = Math.max(0, Math.min(100, left)) + '%';
      bar.style.width = Math.min(100 - Math.max(0, left), width) + '%';
      wrap.appendChild(bar);
      return wrap;
    };
    const cells = function (side, mm, i, cls) {
      if (!side) return [h('td', { class: cls + ' l' }, ''), h('td', { class: cls }, ''), h('td', { class: cls + ' num' }, '')];
      return [
        h('td', { class: cls + ' l' }, badge(side.status)),
        h('td', { class: cls }, miniBar(mm, i, side)),
        h('td', { class: cls + ' num' }, h('div', null, fmtMs(side.duration_ms)), side.tokens ? h('div', { class: 'faint' }, fmtInt(side.tokens) + ' tok') : null),
      ];
    };
    const rowEls = function (it) {
      const r = it.r, mt = it.mt;
      const model = mb && r.ib >= 0 ? mb : ma;
      const idx = mb && r.ib >= 0 ? r.ib : r.ia;
      const depth = model && idx >= 0 ? model.depth[idx] : (r.path.match(/\//g) || []).length;
      const name = model && idx >= 0 ? model.spans[idx].name : r.path.split('/').pop();
      const spanCell = h('div', { class: 'span-cell', title: r.path });
      spanCell.style.paddingLeft = (depth * INDENT) + 'px';
      spanCell.appendChild(kindChip(it.kind));
      spanCell.appendChild(h('span', { class: 'name' }, name));
      const deltaCell = h('td', { class: 'c-delta num' });
      let diffRow = null;
      if (mt) {
        deltaCell.appendChild(h('div', null, deltaEl(mt.duration_ms ? mt.duration_ms.delta : null, '', mt.duration_ms ? mt.duration_ms.pct : null, fmtMs)));
        const tokD = mt.tokens && mt.tokens.delta ? deltaEl(mt.tokens.delta, ' tok', null, fmtInt) : null;
        const costD = mt.cost_usd && mt.cost_usd.delta ? deltaEl(mt.cost_usd.delta, '', null, fmtCost) : null;
        if (tokD || costD) deltaCell.appendChild(h('div', null, tokD, tokD && costD ? h('span', { class: 'faint' }, ' · ') : null, costD));
        if (mt.output_diff) {
          diffRow = h('tr', { class: 'out-diff', hidden: true }, h('td', { colspan: '9' }, udiffEl(mt.output_diff)));
          const btn = h('button', { type: 'button', class: 'out-toggle', 'aria-expanded': 'false' }, 'output changed ▾');
          btn.addEventListener('click', function () {
            diffRow.hidden = !diffRow.hidden;
            btn.setAttribute('aria-expanded', String(!diffRow.hidden));
            btn.textContent = diffRow.hidden ? 'output changed ▾' : 'output changed ▴';
          });
          deltaCell.appendChild(h('div', null, btn));
        }
      } else {
        deltaCell.appendChild(h('span', { class: 'faint' }, it.ad ? 'added in B' : 'removed in B'));
      }
      const tr = h('tr', { class: it.cls, dataset: { path: r.path } },
        h('td', { class: 'c-mark' }, it.mark),
        h('td', { class: 'c-span' }, spanCell),
        cells(it.sa, ma, r.ia, 'a'),
        cells(it.sb, mb, r.ib, 'b'),
        deltaCell);
      return diffRow ? [tr, diffRow] : [tr];
    };

    const PAGE = 400;
    const view = { only: items.length > PAGE && nDiffer > 0, shown: PAGE };
    const tbody = h('tbody');
    const moreBox = h('div', { class: 'more' });
    const onlyBox = h('input', { type: 'checkbox', checked: view.only, onchange: function (e) { view.only = e.target.checked; view.shown = PAGE; drawBody(); } });
    const totalsRow = h('tr', { class: 'totals-row' },
      h('td', { class: 'c-mark' }, ''), h('td', { class: 'c-span' }, '(trace)'),
      h('td', { class: 'a l' }, badge(stat.a)), h('td', { class: 'a' }, ''), h('td', { class: 'a num' }, fmtMs(dur.a)),
      h('td', { class: 'b l' }, badge(stat.b)), h('td', { class: 'b' }, ''), h('td', { class: 'b num' }, fmtMs(dur.b)),
      h('td', { class: 'c-delta num' }, deltaEl(dur.delta, '', dur.pct, fmtMs)));
    function drawBody() {
      const list = view.only ? items.filter((it) => it.differs) : items;
      const frag2 = document.createDocumentFragment();
      const n = Math.min(list.length, view.shown);
      for (let k = 0; k < n; k++) for (const el of rowEls(list[k])) frag2.appendChild(el);
      if (!list.length) frag2.appendChild(h('tr', null, h('td', { colspan: '9', class: 'muted' }, view.only ? 'No span was added or removed, or changed status, tokens or output.' : 'Neither trace has spans.')));
      frag2.appendChild(totalsRow);
      tbody.replaceChildren(frag2);
      moreBox.replaceChildren();
      if (list.length > n) {
        moreBox.appendChild(h('button', { type: 'button', class: 'btn', onclick: function () { view.shown += PAGE * 5; drawBody(); } },
          'Show ' + fmtInt(Math.min(PAGE * 5, list.length - n)) + ' more of ' + fmtInt(list.length - n) + ' remaining spans'));
      }
    }
    drawBody();

    frag.appendChild(h('div', { class: 'diff-summary' },
      h('span', { class: 'pill ' + (nAdded ? 'added' : 'same') }, plural(nAdded, 'added', 'added')),
      h('span', { class: 'pill ' + (nRemoved ? 'removed' : 'same') }, plural(nRemoved, 'removed', 'removed')),
      h('span', { class: 'pill ' + (nChanged ? 'changed' : 'same') }, plural(nChanged, 'changed status', 'changed status')),
      h('span', { class: 'pill same' }, plural(nMatched, 'matched', 'matched')),
      h('label', { class: 'only' }, onlyBox, ' only spans that differ (added, removed, status, tokens, output)'),
      h('span', { class: 'faint' }, 'Spans are matched by their path of names, as ', h('code', null, 'agentrace diff'), ' does.')));
    frag.appendChild(h('div', { class: 'card' }, h('table', { class: 'diff' },
      h('colgroup', null, h('col', { class: 'c-mark' }), h('col', { class: 'c-span' }), h('col', { class: 'c-st' }), h('col', { class: 'c-bar' }), h('col', { class: 'c-dur' }),
        h('col', { class: 'c-st' }), h('col', { class: 'c-bar' }), h('col', { class: 'c-dur' }), h('col', { class: 'c-delta' })),
      h('thead', null,
        h('tr', null, h('th', { class: 'c-mark' }, ''), h('th', { class: 'c-span' }, 'Span'),
          h('th', { class: 'side-head', colspan: '3' }, 'A'), h('th', { class: 'side-head', colspan: '3' }, 'B'), h('th', { class: 'c-delta num' }, 'Δ B − A'))),
      tbody)));
    frag.appendChild(moreBox);
    return frag;
  }

  function udiffEl(text) {
    const pre = h('div', { class: 'udiff' });
    for (const line of String(text).replace(/\n$/, '').split('\n')) {
      const cls = line.startsWith('+++') || line.startsWith('---') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : 'ctx';
      pre.appendChild(h('span', { class: cls }, line || ' '));
    }
    return pre;
  }

  // ---------------------------------------------------------------------------------------

  render();
  connectLive();
})();
