// @ts-check
// Page 4 of serve: two traces side by side, spans matched by their path of names as
// `agentrace diff` matches them.

import { api, errorNotice, serial } from './api.js';
import { badge, diffPath, h, kindChip, link, tracePath } from './dom.js';
import { fmtCost, fmtInt, fmtLocal, fmtMs, parseMs, plural, safeKind, safeStatus } from './format.js';
import { buildModel, isRunning, spanPaths } from './model.js';
import { app, setCrumbs, setState } from './shell.js';
import { INDENT } from './waterfall.js';

/** @typedef {import('./model.js').Model} Model */

/**
 * @returns {import('./shell.js').Page}
 */
export function diffPage() {
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

/**
 * @param {number} p
 */
export function fmtPct(p) {
  const a = Math.abs(p);
  return a >= 1000 ? Math.round(p).toLocaleString('en-US') : a >= 100 ? p.toFixed(0) : p.toFixed(1);
}

/**
 * @param {number | null | undefined} delta
 * @param {string} unit
 * @param {number | null | undefined} pctValue
 * @param {(n: number) => string} fmt
 */
export function deltaEl(delta, unit, pctValue, fmt) {
  if (delta === null || delta === undefined || !isFinite(delta)) return h('span', { class: 'delta-zero' }, '—');
  const cls = delta > 0 ? 'delta-up' : delta < 0 ? 'delta-down' : 'delta-zero';
  const text = (delta > 0 ? '+' : '') + fmt(delta) + (unit || '') + (pctValue !== null && pctValue !== undefined && isFinite(pctValue) && delta !== 0 ? ' (' + (pctValue > 0 ? '+' : '') + fmtPct(pctValue) + '%)' : '');
  return h('span', { class: cls }, text);
}

/**
 * @param {any} d the `/api/diff` answer (`diff --format json` with content)
 * @param {import('./model.js').TraceJson | null} ta
 * @param {import('./model.js').TraceJson | null} tb
 */
export function drawDiff(d, ta, tb) {
  const frag = document.createDocumentFragment();
  const A = d.a || {}, B = d.b || {};
  document.title = 'Diff: ' + (A.name || A.trace_id) + ' ↔ ' + (B.name || B.trace_id) + ' — agentrace';
  /**
   * @param {string} label
   * @param {any} s
   * @param {import('./model.js').TraceJson | null} t
   */
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
  /**
   * @param {string} label
   * @param {unknown} content
   */
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
    /**
     * @param {number} upto
     */
    const flushA = function (upto) {
      for (; at < upto; at++) {
        const ia = aOrder[at];
        if (!bSet.has(pa[ia])) rows.push({ path: pa[ia], ia: ia, ib: -1 });
      }
    };
    for (const ib of bOrder) {
      const p = pb[ib];
      const ia = aIndex.get(p) ?? -1;
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
  /** @type {any[]} */
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
        differs: changed || !!mt.input_diff || !!mt.output_diff || !!(mt.tokens && mt.tokens.delta) };
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

  /**
   * @param {Model | null} mm
   * @param {number} i
   * @param {any} side
   */
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
  /**
   * @param {any} side
   * @param {Model | null} mm
   * @param {number} i
   * @param {string} cls
   */
  const cells = function (side, mm, i, cls) {
    if (!side) return [h('td', { class: cls + ' l' }, ''), h('td', { class: cls }, ''), h('td', { class: cls + ' num' }, '')];
    return [
      h('td', { class: cls + ' l' }, badge(side.status)),
      h('td', { class: cls }, miniBar(mm, i, side)),
      h('td', { class: cls + ' num' }, h('div', null, fmtMs(side.duration_ms)), side.tokens ? h('div', { class: 'faint' }, fmtInt(side.tokens) + ' tok') : null),
    ];
  };
  /**
   * @param {any} it
   */
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
    /** @type {HTMLElement | null} */
    let diffRow = null;
    if (mt) {
      deltaCell.appendChild(h('div', null, deltaEl(mt.duration_ms ? mt.duration_ms.delta : null, '', mt.duration_ms ? mt.duration_ms.pct : null, fmtMs)));
      const tokD = mt.tokens && mt.tokens.delta ? deltaEl(mt.tokens.delta, ' tok', null, fmtInt) : null;
      const costD = mt.cost_usd && mt.cost_usd.delta ? deltaEl(mt.cost_usd.delta, '', null, fmtCost) : null;
      if (tokD || costD) deltaCell.appendChild(h('div', null, tokD, tokD && costD ? h('span', { class: 'faint' }, ' · ') : null, costD));
      // A changed input (the prompt) before a changed output, behind one toggle.
      if (mt.input_diff || mt.output_diff) {
        const out = h('tr', { class: 'out-diff', hidden: true }, h('td', { colspan: '9' },
          mt.input_diff ? udiffEl(mt.input_diff) : null, mt.output_diff ? udiffEl(mt.output_diff) : null));
        diffRow = out;
        const what = mt.input_diff && mt.output_diff ? 'input and output' : mt.input_diff ? 'input' : 'output';
        const btn = h('button', { type: 'button', class: 'out-toggle', 'aria-expanded': 'false' }, what + ' changed ▾');
        btn.addEventListener('click', function () {
          out.hidden = !out.hidden;
          btn.setAttribute('aria-expanded', String(!out.hidden));
          btn.textContent = what + (out.hidden ? ' changed ▾' : ' changed ▴');
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
  const onlyBox = h('input', { type: 'checkbox', checked: view.only, onchange: function (/** @type {Event} */ e) { view.only = /** @type {HTMLInputElement} */ (e.target).checked; view.shown = PAGE; drawBody(); } });
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

/**
 * @param {string} text
 */
export function udiffEl(text) {
  const pre = h('div', { class: 'udiff' });
  for (const line of String(text).replace(/\n$/, '').split('\n')) {
    const cls = line.startsWith('+++') || line.startsWith('---') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : 'ctx';
    pre.appendChild(h('span', { class: cls }, line || ' '));
  }
  return pre;
}
