// @ts-check
// A conversation, the traces of one group as turns: the user's input and the final output of
// each, who worked on it, and the time between turns. Serve's conversation page draws it from
// the API; the HTML export of a conversation from its embedded traces.

import { badge, errorBox, h, relTime } from './dom.js';
import { fmtCost, fmtGap, fmtInt, fmtLocal, fmtMs, parseMs, parseUs, plural, totalTokens, usageText } from './format.js';
import { exchange, isRunning } from './model.js';

/** @typedef {import('./model.js').TraceJson} TraceJson */

/**
 * The conversation's header card and one card per turn, in start order.
 * @param {string} group
 * @param {TraceJson[]} traces
 * @param {(t: TraceJson, k: number) => Node} title the turn's name, as a link to where its trace is shown
 * @returns {HTMLElement[]}
 */
export function conversationEls(group, traces, title) {
  traces = traces.slice().sort((/** @type {TraceJson} */ x, /** @type {TraceJson} */ y) => parseUs(x.started_at) - parseUs(y.started_at));
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
  /** @type {HTMLElement[]} */
  const items = [h('div', { class: 'card convo-head' }, h('h1', null, 'Conversation ', h('code', null, group)), headFacts)];
  let prevEnd = NaN;
  traces.forEach(function (/** @type {TraceJson} */ t, /** @type {number} */ k) {
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
        title(t, k),
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
  return items;
}

/**
 * "triage → billing · 2 model calls · 1 tool call": who worked on a turn.
 * @param {TraceJson} t
 */
export function agentsLine(t) {
  const spans = Array.isArray(t.spans) ? t.spans : [];
  /** @type {string[]} */
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
