// @ts-check
// The detail pane of one span: facts, error, the chat view of model input and output, tool
// calls, commands, events and the remaining attributes. Shared by serve's trace page and the
// HTML export, so both show a span the same way.

import { badge, errorBox, h, kindChip, kvTable, section } from './dom.js';
import { fmtCost, fmtInt, fmtLocal, fmtMs, plural, pretty, usageText } from './format.js';
import { causeOf, didNotFinish, messageText } from './model.js';

/**
 * A chat message as model APIs write them; anything else shows as JSON.
 * @typedef {{ role?: string, type?: string, name?: string, content?: unknown, tool_call_id?: string, tool_calls?: unknown }} Message
 */

/**
 * @param {unknown} calls the `tool_calls` of a message, or their JSON text
 */
export function toolCallsEl(calls) {
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

/**
 * @param {unknown} msg
 */
export function messageEl(msg) {
  if (!msg || typeof msg !== 'object') return h('div', { class: 'msg' }, h('div', { class: 'text' }, pretty(msg)));
  return messageBox(/** @type {Message} */ (msg));
}

/** @param {Message} msg */
function messageBox(msg) {
  const role = String(msg.role || (msg.type ? msg.type : 'message'));
  const cls = ['system', 'user', 'assistant', 'tool', 'developer'].indexOf(role) >= 0 ? role : '';
  const text = messageText(msg.content);
  // A tool's result is usually JSON: indented, as the tool's own span shows it.
  const json = role === 'tool' && typeof msg.content === 'string' && pretty(text) !== text;
  return h('div', { class: 'msg ' + cls },
    h('div', { class: 'role' }, role, msg.name ? h('span', { class: 'muted' }, String(msg.name)) : null,
      msg.tool_call_id ? h('span', { class: 'muted' }, 'for ' + msg.tool_call_id) : null),
    json ? h('pre', { class: 'text' }, pretty(text)) : text !== '' ? h('div', { class: 'text' }, text) : null,
    msg.tool_calls ? toolCallsEl(msg.tool_calls) : null);
}

/**
 * @param {unknown} v
 * @param {string} defaultRole
 */
export function chatEl(v, defaultRole) {
  if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === 'object' && (x.role || x.type))) {
    return h('div', { class: 'chat' }, v.map(messageEl));
  }
  return h('div', { class: 'chat' }, messageEl({ role: defaultRole, content: typeof v === 'string' ? v : pretty(v) }));
}

/** The attributes of MCP spans shown as facts (see docs/contract.md), and their labels. */
const MCP_FACTS = ['mcp.server', 'mcp.transport', 'mcp.url', 'mcp.protocol_version', 'mcp.session_id', 'mcp.is_error', 'cached'];
/** @type {Record<string, string>} */
const MCP_LABELS = {
  'mcp.server': 'MCP server', 'mcp.transport': 'transport', 'mcp.url': 'url', 'mcp.protocol_version': 'protocol',
  'mcp.session_id': 'session', 'mcp.is_error': 'isError', cached: 'cached',
};

/**
 * @param {unknown} arg
 */
export function shellQuote(arg) {
  const s = String(arg);
  return /^[\w@%+=:,./-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
}

/**
 * The detail pane of span `i`: facts, error, readable input/output, events, attributes.
 * @param {import('./model.js').Model} m
 * @param {number} i
 * @param {(i: number) => void} select
 */
export function spanDetail(m, i, select) {
  const s = m.spans[i];
  const a = s.attributes && typeof s.attributes === 'object' ? s.attributes : {};
  const used = new Set();
  const box = document.createDocumentFragment();
  box.appendChild(h('div', { class: 'd-title' }, kindChip(s.kind), h('h2', null, s.name), badge(s.status)));

  const facts = h('table', { class: 'kv' });
  /**
   * @param {string} k
   * @param {unknown} v
   */
  const fact = function (k, v) { if (v !== null && v !== undefined) facts.appendChild(h('tr', null, h('td', { class: 'k' }, k), h('td', null, v))); };
  if (didNotFinish(s)) fact('duration', s.duration_ms !== null && s.duration_ms !== undefined ? '≥' + fmtMs(s.duration_ms) + ' · did not finish (the time until the run\'s last record)' : 'did not finish');
  else fact('duration', s.duration_ms !== null && s.duration_ms !== undefined ? fmtMs(s.duration_ms) : (s.status === 'running' ? 'running' : '—'));
  if (isFinite(m.start[i])) fact('started', '+' + fmtMs((m.start[i] - m.lo) / 1000) + '  ·  ' + fmtLocal(m.start[i] / 1000, true));
  if (isFinite(m.end[i])) fact('ended', '+' + fmtMs((m.end[i] - m.lo) / 1000) + '  ·  ' + fmtLocal(m.end[i] / 1000, true));
  fact('span id', h('code', null, s.span_id));
  if (m.parent[i] >= 0) {
    const p = m.parent[i];
    fact('parent', h('a', { href: '#', onclick: function (/** @type {Event} */ e) { e.preventDefault(); select(p); } }, m.spans[p].name));
  }
  const cause = causeOf(m, i);
  if (cause >= 0) fact('failed in', h('a', { href: '#', class: 'cause', onclick: function (/** @type {Event} */ e) { e.preventDefault(); select(cause); } }, m.spans[cause].name));
  if (m.children[i].length) fact('children', plural(m.children[i].length, 'span') + (m.size[i] - 1 > m.children[i].length ? ' (' + fmtInt(m.size[i] - 1) + ' below)' : ''));
  const factKeys = s.kind === 'generation'
    ? ['model', 'response_model', 'finish_reason', 'usage', 'cost_usd', 'time_to_first_token_ms', 'queued_ms', 'stream', 'offline', 'replayed', 'usage_estimated']
    : s.kind === 'agent' ? ['agent', 'model', 'step_id', 'usage', 'session']
      : s.kind === 'function' ? ['tool', 'call_id', 'exit_code', 'pid'].concat(MCP_FACTS)
        : s.kind === 'mcp_tools' ? MCP_FACTS
          : s.kind === 'command' ? ['step_id', 'exit_code', 'pid'] : ['step_id'];
  for (const k of factKeys) {
    if (a[k] === undefined) continue;
    used.add(k);
    if (MCP_LABELS[k]) fact(MCP_LABELS[k], String(a[k]));
    else if (k === 'usage' && a[k] && typeof a[k] === 'object') fact('tokens', usageText(a[k]));
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
      /** @type {Message} */
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
      box.appendChild(h('div', { class: 'metadata' }, a.tools.map((/** @type {unknown} */ t) => h('span', { class: 'chip' }, typeof t === 'string' ? t : pretty(t)))));
    }
  }
  if (s.kind === 'mcp_tools' && a.tools !== undefined) {
    used.add('tools');
    const tools = Array.isArray(a.tools) ? a.tools : [];
    box.appendChild(section('Tools listed', plural(tools.length, 'tool')));
    box.appendChild(h('div', { class: 'metadata' }, tools.map((/** @type {unknown} */ t) => h('span', { class: 'chip' }, typeof t === 'string' ? t : pretty(t)))));
  }
  if (s.kind === 'mcp_tools' && a.stderr_tail !== undefined) {
    used.add('stderr_tail');
    box.appendChild(section('stderr (tail)', 'the server\'s last lines'));
    box.appendChild(h('pre', { class: 'stream stderr' }, typeof a.stderr_tail === 'string' ? a.stderr_tail : pretty(a.stderr_tail)));
  }
  if (s.kind === 'handoff' && (a.from_agent !== undefined || a.to_agent !== undefined)) {
    used.add('from_agent'); used.add('to_agent');
    box.appendChild(section('Handoff'));
    box.appendChild(h('div', { class: 'handoff-flow' }, String(a.from_agent !== undefined ? a.from_agent : '?'), h('span', { class: 'muted' }, '→'), String(a.to_agent !== undefined ? a.to_agent : '?')));
  }
  if (s.kind === 'function' || s.kind === 'command' || a.argv !== undefined || a.script !== undefined) {
    if (s.kind === 'function' && a.input !== undefined) { used.add('input'); box.appendChild(section('Arguments')); box.appendChild(h('pre', { class: 'json' }, pretty(a.input))); }
    if (s.kind === 'function' && a.output !== undefined) { used.add('output'); box.appendChild(section('Result')); box.appendChild(h('pre', { class: 'json' }, pretty(a.output))); }
    if (s.kind === 'function' && a.structured_output !== undefined) { used.add('structured_output'); box.appendChild(section('Structured result', 'structuredContent')); box.appendChild(h('pre', { class: 'json' }, pretty(a.structured_output))); }
    if (a.argv !== undefined) {
      used.add('argv');
      box.appendChild(section(s.kind === 'function' ? 'Tool command' : 'Command', 'argv, no shell'));
      box.appendChild(h('div', { class: 'cmdline' }, Array.isArray(a.argv) ? a.argv.map(shellQuote).join(' ') : String(a.argv)));
    }
    if (a.script !== undefined) { used.add('script'); box.appendChild(section('Script', 'sh -c')); box.appendChild(h('div', { class: 'cmdline' }, String(a.script))); }
    if (Array.isArray(a.env)) { used.add('env'); box.appendChild(section('Environment', 'names of templated variables')); box.appendChild(h('div', { class: 'metadata' }, a.env.map((/** @type {unknown} */ v) => h('span', { class: 'chip' }, String(v))))); }
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
    box.appendChild(h('div', { class: 'events' }, evs.map(function (/** @type {import('./model.js').EventJson} */ e, /** @type {number} */ k) {
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
