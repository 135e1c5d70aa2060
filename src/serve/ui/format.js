// @ts-check
// Formatting: durations, counts, money, times and JSON as the UI shows them. Pure functions of
// their arguments (and the clock, for relative times); nothing here touches the page.

/** @typedef {import('./model.js').Usage} Usage */

/**
 * @param {number} n
 * @param {number} [w]
 */
export const pad = (n, w) => String(n).padStart(w || 2, '0');

/**
 * @param {number | null | undefined} ms
 * @returns {string}
 */
export function fmtMs(ms) {
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

/**
 * A gap between two moments, in words: "3m 12s".
 * @param {number} ms
 */
export function fmtGap(ms) {
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

/**
 * @param {number | null | undefined} n
 */
export function fmtInt(n) {
  if (n === null || n === undefined || !isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

/**
 * @param {number | null | undefined} c
 */
export function fmtCost(c) {
  if (c === null || c === undefined || !isFinite(c)) return '—';
  const a = Math.abs(c), sign = c < 0 ? '-' : '';
  if (a === 0) return '$0';
  if (a < 0.000001) return sign + '<$0.000001';
  if (a < 0.01) return sign + '$' + trimZeros(a.toFixed(6));
  if (a < 1) return sign + '$' + a.toFixed(4);
  return sign + '$' + a.toFixed(2);
}
/**
 * @param {string} s
 */
export const trimZeros = (s) => s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');

/**
 * Local date and time, to the second: 2026-11-25 14:03:12.
 * @param {number} ms
 * @param {boolean} [withMillis]
 */
export function fmtLocal(ms, withMillis) {
  if (!isFinite(ms)) return '—';
  const d = new Date(ms);
  let s = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  if (withMillis) s += '.' + pad(d.getMilliseconds(), 3);
  return s;
}

/**
 * @param {number} ms
 */
export function fmtRel(ms) {
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
/**
 * RFC 3339 → microseconds since the epoch, exact (Date.parse alone stops at milliseconds).
 * @param {unknown} s
 * @returns {number}
 */
export function parseUs(s) {
  if (typeof s !== 'string') return NaN;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/i.exec(s.trim());
  if (!m) { const t = Date.parse(s); return isFinite(t) ? t * 1000 : NaN; }
  const base = Date.parse(m[1] + (m[3] || 'Z'));
  if (!isFinite(base)) return NaN;
  const frac = m[2] ? Math.round(Number('0' + m[2]) * 1e6) : 0;
  return base * 1000 + frac;
}
/**
 * @param {unknown} s
 */
export const parseMs = (s) => parseUs(s) / 1000;

/**
 * @param {unknown} v
 * @returns {string}
 */
export function pretty(v) {
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

/**
 * @param {number} n
 * @param {string} one
 * @param {string} [many]
 */
export function plural(n, one, many) { return fmtInt(n) + ' ' + (n === 1 ? one : (many || one + 's')); }

/** @type {Record<string, string>} */
export const STATUS_MARK = { error: '✕', cancelled: '⊘', skipped: '↷', running: '●' };
/**
 * @type {readonly string[]}
 */
export const KINDS = ['custom', 'agent', 'generation', 'function', 'handoff', 'command', 'score', 'mcp_tools'];
/**
 * How the legend names a kind.
 * @param {string} k
 * @returns {string}
 */
export const kindLabel = (k) => (k === 'mcp_tools' ? 'MCP tools' : k);
/**
 * @param {unknown} k
 * @returns {string}
 */
export const safeKind = (k) => (typeof k === 'string' && KINDS.indexOf(k) >= 0 ? k : 'custom');
/**
 * @param {unknown} s
 * @returns {string}
 */
export const safeStatus = (s) => (typeof s === 'string' && ['ok', 'error', 'cancelled', 'skipped', 'running'].indexOf(s) >= 0 ? s : 'other');
/**
 * @param {Usage | null | undefined} u
 */
export function usageText(u) {
  if (!u) return '—';
  const total = u.total_tokens !== undefined ? u.total_tokens : (u.input_tokens || 0) + (u.output_tokens || 0);
  return fmtInt(total) + ' (' + fmtInt(u.input_tokens || 0) + ' in · ' + fmtInt(u.output_tokens || 0) + ' out)';
}
/**
 * @param {Usage | null | undefined} u
 * @returns {number}
 */
export const totalTokens = (u) => (u ? (u.total_tokens !== undefined ? u.total_tokens : (u.input_tokens || 0) + (u.output_tokens || 0)) : 0);
