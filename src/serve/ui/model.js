// @ts-check
// The trace model shared by the trace, conversation and diff pages and by the HTML export: a
// trace as the JSON API gives it (`trace::json::trace_doc_json`, docs/contract.md), indexed
// once into typed arrays (parent, children, depth, tree order, times in µs), so 10,000 spans
// stay fast.

import { parseUs, pretty } from './format.js';

/**
 * The JSON shapes of docs/contract.md, as far as the UI reads them. Attributes are free-form.
 * @typedef {{ input_tokens?: number, output_tokens?: number, total_tokens?: number }} Usage
 * @typedef {{ message: string, data?: unknown }} ErrorJson
 * @typedef {{ name: string, time: string, attributes?: Record<string, any> }} EventJson
 * @typedef {{ span_id: string, parent_id?: string | null, kind: string, name: string,
 *   status: string, started_at: string, ended_at?: string | null, duration_ms?: number | null,
 *   attributes?: Record<string, any>, events?: EventJson[], error?: ErrorJson | null }} SpanJson
 * @typedef {{ trace_id: string, name: string, workflow?: string, group_id?: string | null,
 *   metadata?: Record<string, unknown>, status: string, started_at: string,
 *   ended_at?: string | null, duration_ms?: number | null, usage?: Usage | null,
 *   cost_usd?: number | null, offline?: boolean, error?: ErrorJson | null }} TraceSummary
 * @typedef {TraceSummary & { spans: SpanJson[] }} TraceJson
 * @typedef {ReturnType<typeof buildModel>} Model
 */

/**
 * Indexes a trace's spans: parent/children/depth in tree order, times in µs.
 * @param {TraceJson} t
 * @param {number} [nowUs] now, for the end of a running trace
 */
export function buildModel(t, nowUs) {
  const spans = Array.isArray(t.spans) ? t.spans : [];
  const n = spans.length;
  /** @type {Map<string, number>} */
  const byId = new Map();
  for (let i = 0; i < n; i++) byId.set(spans[i].span_id, i);
  const parent = new Int32Array(n), depth = new Int32Array(n), order = new Int32Array(n);
  const start = new Float64Array(n), end = new Float64Array(n);
  /** @type {number[][]} */
  const children = new Array(n);
  /** @type {number[]} */
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
  /**
   * @param {number} r
   */
  const walk = function (r) {
    const stack = [r];
    depth[r] = 0;
    while (stack.length) {
      const i = /** @type {number} */ (stack.pop());
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

/**
 * @param {TraceSummary | null | undefined} t
 * @returns {boolean}
 */
export function isRunning(t) { return !!t && t.status === 'running'; }

/**
 * Whether a span's run died while it was open (docs/contract.md): it ends at the run's last
 * record, so its duration is only the time known to have elapsed. Older stores say so by the
 * message alone.
 * @param {SpanJson} s
 * @returns {boolean}
 */
export function didNotFinish(s) {
  const e = s.error;
  if (s.status !== 'error' || !e) return false;
  const data = /** @type {Record<string, unknown> | null | undefined} */ (e.data);
  return (!!data && typeof data === 'object' && data.unfinished === true) || e.message === 'did not finish';
}

/**
 * The span a failure was reported on, for a span that failed because of it (its error's
 * `data.caused_by`); -1 for none.
 * @param {Model} m
 * @param {number} i
 * @returns {number}
 */
export function causeOf(m, i) {
  const e = m.spans[i].error;
  const data = /** @type {Record<string, unknown> | null | undefined} */ (e && e.data);
  const id = data && typeof data === 'object' ? data.caused_by : undefined;
  const c = typeof id === 'string' ? m.byId.get(id) : undefined;
  return c === undefined || c === i ? -1 : c;
}

/**
 * The right end of the time axis: the last thing that happened, or now while running.
 * @param {Model} m
 * @param {number} [nowUs]
 */
export function updateHi(m, nowUs) {
  let hi = m.staticHi;
  if (isRunning(m.trace)) hi = Math.max(hi, nowUs || Date.now() * 1000);
  m.hi = Math.max(hi, m.lo + 1);
}

/**
 * "Span paths" exactly as `agentrace diff` makes them: names from the root, `#k` for repeats.
 * @param {Model} m
 * @returns {string[]}
 */
export function spanPaths(m) {
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

/**
 * The conversation view of a trace: the user's input and the final output.
 * @param {TraceJson} t
 * @returns {{ input: string | null, output: string | null }}
 */
export function exchange(t) {
  const spans = Array.isArray(t.spans) ? t.spans : [];
  /**
   * @param {unknown} v
   * @returns {string | null}
   */
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
  /**
   * @param {SpanJson} s
   */
  const kind = (s) => s.kind === 'agent' || s.kind === 'generation';
  let input = null, output = null;
  const firstIn = roots.find((s) => typeof s.attributes?.input === 'string' && kind(s))
    || roots.find((s) => s.attributes && s.attributes.input !== undefined)
    || spans.find((s) => kind(s) && s.attributes && s.attributes.input !== undefined);
  if (firstIn && firstIn.attributes) input = text(firstIn.attributes.input);
  /**
   * @param {SpanJson} s
   */
  const withOut = (s) => s.attributes && (s.attributes.output !== undefined || s.attributes.stdout !== undefined);
  /**
   * @param {SpanJson} a
   * @param {SpanJson} b
   */
  const byEnd = (a, b) => parseUs(b.ended_at || b.started_at) - parseUs(a.ended_at || a.started_at);
  const lastOut = roots.filter(withOut).sort(byEnd)[0] || spans.filter(withOut).sort(byEnd)[0];
  if (lastOut && lastOut.attributes) output = text(lastOut.attributes.output !== undefined ? lastOut.attributes.output : lastOut.attributes.stdout);
  return { input: input, output: output };
}

/**
 * @param {unknown} content
 * @returns {string}
 */
export function messageText(content) {
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
