// @ts-check
// The waterfall of one trace with its detail pane: nested bars on a time axis, collapsible
// virtual rows (only the rows in view exist, so 10,000 spans scroll smoothly), find, the
// keyboard, and the selected span's details. Serve's trace page feeds it from the API, the
// HTML export from the JSON in the page; `links` says whether links to other pages (the
// conversation, the address of the selected span) make sense where it runs.

import { spanDetail } from './detail.js';
import { badge, errorBox, fill, groupPath, h, link, relTime } from './dom.js';
import { KINDS, STATUS_MARK, fmtCost, fmtInt, fmtLocal, fmtMs, kindLabel, parseMs, safeKind, safeStatus, usageText } from './format.js';
import { buildModel, didNotFinish, isRunning, updateHi } from './model.js';
import { app, setCrumbs } from './shell.js';

/** @typedef {import('./model.js').Model} Model */

export const ROW = 24, OVERSCAN = 12, INDENT = 14;

/**
 * The waterfall and detail pane of one trace, not yet filled: `setModel` draws a trace into it.
 * @param {{ wanted: string | null, links: boolean }} options `wanted`: the span to select first
 */
export function traceView(options) {
  let dead = false;
  // The model: null until setModel (and after fail); whatever may run before checks `!m`.
  /** @type {Model} */
  let m = /** @type {any} */ (null);
  const st = {
    collapsed: new Set(),      // span ids whose children are hidden
    selected: -1,              // span index
    rows: new Int32Array(0),   // visible span indexes, in tree order
    rowOf: new Int32Array(0),  // span index → row, or -1
    match: /** @type {Uint8Array | null} */ (null), // find hits
    matches: /** @type {number[]} */ ([]),
    matchAt: -1,
    drawn: '',
    labelW: 320,
    detailKey: '',
  };
  const wanted = options.wanted;

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

  // ---- header
  function drawHeader() {
    const t = m.trace;
    document.title = (t.name || t.trace_id) + ' — agentrace';
    setCrumbs(options.links
      ? [{ text: 'Traces', href: '/' }, ...(t.group_id ? [{ text: t.group_id, href: groupPath(t.group_id) }] : []), { text: t.name || t.trace_id }]
      : [{ text: t.name || t.trace_id }]);
    const started = m.lo / 1000;
    /**
     * @param {string} label
     * @param {unknown} value
     * @param {string} [title]
     */
    const dd = function (label, value, title) {
      return h('div', null, h('dt', null, label), h('dd', { title: title || null }, value));
    };
    const running = isRunning(t);
    const facts = h('dl', { class: 'facts' },
      dd('workflow', t.workflow || '—'),
      t.group_id ? dd('group', options.links ? link(groupPath(t.group_id), t.group_id) : h('code', null, t.group_id)) : null,
      dd('started', [fmtLocal(parseMs(t.started_at)), ' ', h('span', { class: 'muted' }, '(', relTime(parseMs(t.started_at)), ')')]),
      t.ended_at ? dd('ended', fmtLocal(parseMs(t.ended_at)), fmtLocal(parseMs(t.ended_at), true)) : null,
      dd('duration', running && (t.duration_ms === null || t.duration_ms === undefined)
        ? h('span', { dataset: { since: String(started) } }, fmtMs(Date.now() - started) + '…') : fmtMs(t.duration_ms)),
      dd('spans', fmtInt(m.n)),
      dd('tokens', usageText(t.usage)),
      dd('cost', t.offline ? 'offline (not priced)' : fmtCost(t.cost_usd)),
      dd('trace', h('code', { class: 'id' }, t.trace_id)));
    const present = new Set(m.spans.map((s) => s.kind));
    fill(legend, KINDS.filter((k) => present.has(k)).map((k) => h('span', null, h('i', { class: 'k-' + k }), kindLabel(k))));
    // The offline mark is shown as the cost, not as a metadata chip.
    const meta = t.metadata && typeof t.metadata === 'object' ? Object.keys(t.metadata).filter((k) => k !== 'agentrace.offline') : [];
    fill(head,
      h('div', { class: 'title' }, h('h1', null, t.name || t.trace_id), badge(t.status), h('span', { class: 'spacer' }),
        t.group_id && options.links ? link(groupPath(t.group_id), 'Conversation →', 'btn small') : null),
      facts,
      meta.length ? h('div', { class: 'metadata', 'aria-label': 'Metadata' }, meta.map(function (k) {
        const v = (t.metadata || {})[k];
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
    /** @type {number[]} */
    const stack = [];
    for (let i = m.roots.length - 1; i >= 0; i--) stack.push(m.roots[i]);
    while (stack.length) {
      const i = /** @type {number} */ (stack.pop());
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

  /**
   * @param {number} us
   */
  const pct = (us) => ((us - m.lo) / (m.hi - m.lo)) * 100;

  /**
   * @param {number} i span
   * @param {number} r row
   */
  function rowEl(i, r) {
    const s = m.spans[i];
    const status = safeStatus(s.status);
    const kind = safeKind(s.kind);
    const kids = m.children[i].length;
    const collapsed = kids > 0 && st.collapsed.has(s.span_id);
    // A span whose run died while it was open: at least this long, not this long.
    const unfinished = didNotFinish(s);
    const div = h('div', {
      class: 'row ' + status + (i === st.selected ? ' selected' : '') + (st.match && st.match[i] ? ' match' : ''),
      role: 'treeitem', 'aria-level': String(m.depth[i] + 1), 'aria-selected': i === st.selected ? 'true' : 'false',
      'aria-expanded': kids ? String(!collapsed) : null,
      dataset: { i: String(i), spanId: s.span_id },
      title: s.kind + ' · ' + s.name + ' · ' + (unfinished ? 'did not finish' : s.status) +
        (s.duration_ms !== null && s.duration_ms !== undefined ? ' · ' + (unfinished ? '≥' : '') + fmtMs(s.duration_ms) : ''),
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
    const durText = (s.duration_ms !== null && s.duration_ms !== undefined ? (unfinished ? '≥' : '') + fmtMs(s.duration_ms) : (status === 'running' ? 'running' : '')) +
      (unfinished ? ' · did not finish' : status !== 'ok' && status !== 'running' ? ' · ' + s.status : '');
    if (durText) {
      const dur = h('span', { class: 'dur' }, durText);
      if (left + width > 72) dur.style.right = 'calc(' + (100 - left) + '% + 5px)';
      else dur.style.left = 'calc(' + (left + width) + '% + 5px)';
      track.appendChild(dur);
    }
    div.appendChild(track);
    return div;
  }

  /**
   * @param {boolean} force even when the rows in view are the ones drawn
   */
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
  /**
   * @param {number} raw
   */
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
  /**
   * @param {number} i
   * @param {{ scroll?: boolean, center?: boolean }} [opts]
   */
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
    if (!options.links) return;
    const spanId = m.spans[i].span_id;
    urlTimer = setTimeout(function () {
      if (dead) return;
      const url = new URL(location.href);
      url.searchParams.set('span', spanId);
      history.replaceState(null, '', url.pathname + url.search);
    }, 300);
  }
  let urlTimer = 0;

  /**
   * @param {number} i
   */
  function expandTo(i) {
    let changed = false;
    for (let p = m.parent[i]; p >= 0; p = m.parent[p]) {
      if (st.collapsed.delete(m.spans[p].span_id)) changed = true;
    }
    if (changed) flatten();
  }

  /**
   * @param {number} r
   * @param {boolean} [center]
   */
  function scrollToRow(r, center) {
    if (r < 0) return;
    const top = r * ROW, h0 = viewport.clientHeight;
    if (center && (top < viewport.scrollTop || top + ROW > viewport.scrollTop + h0)) viewport.scrollTop = Math.max(0, top - h0 / 2);
    else if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + ROW > viewport.scrollTop + h0) viewport.scrollTop = top + ROW - h0;
    drawRows(false);
  }

  /**
   * @param {number} i
   * @param {boolean} [collapse] toggles when left out
   */
  function toggle(i, collapse) {
    if (!m.children[i].length) return;
    const id = m.spans[i].span_id;
    const now = collapse === undefined ? !st.collapsed.has(id) : collapse;
    if (now) st.collapsed.add(id); else st.collapsed.delete(id);
    flatten();
    drawRows(true);
  }

  /**
   * @param {boolean} collapse
   */
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
  /**
   * @param {boolean} jump
   */
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
  /**
   * @param {number} dir
   */
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
    if (!(e.target instanceof Element)) return;
    const tg = /** @type {HTMLElement | null} */ (e.target.closest('[data-toggle]'));
    if (tg) { toggle(Number(tg.dataset.toggle)); return; }
    const r = /** @type {HTMLElement | null} */ (e.target.closest('.row'));
    if (r) { select(Number(r.dataset.i), { scroll: false }); viewport.focus({ preventScroll: true }); }
  });
  rowsBox.addEventListener('dblclick', function (e) {
    if (!(e.target instanceof Element)) return;
    const r = /** @type {HTMLElement | null} */ (e.target.closest('.row'));
    if (r && !e.target.closest('[data-toggle]')) toggle(Number(r.dataset.i));
  });

  /**
   * @param {KeyboardEvent} e
   */
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

  /**
   * @param {KeyboardEvent} e
   */
  function onDocKey(e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const target = e.target instanceof HTMLElement ? e.target : null;
    const tag = target && target.tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || (target && target.isContentEditable)) return;
    if (e.key === '/') { e.preventDefault(); findInput.focus(); findInput.select(); return; }
    if (target && target.closest('.detail') && (e.key === ' ' || e.key === 'Enter')) return;
    if (target && target.closest('a, button, summary')) { if (e.key === 'Enter' || e.key === ' ') return; }
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
  /**
   * @param {import('./model.js').TraceJson} trace
   * @param {boolean} first the first time: select the wanted span
   */
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
    if (want && m.byId.has(want)) sel = m.byId.get(want) ?? -1;
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

  return {
    page: page,
    setModel: setModel,
    /**
     * Shows `notice` in place of the trace.
     * @param {Node} notice
     */
    fail: function (notice) {
      m = /** @type {any} */ (null);
      split.hidden = true;
      head.replaceChildren(notice);
    },
    running: function () { return !!m && isRunning(m.trace); },
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
