// @ts-check
// One experiment of `agentrace eval` drawn from its report (the JSON of `show EXPERIMENT`): the
// summary, the scorers, and the cases with every score, sortable by any column and filtered to
// the failing ones. Network-free, so that serve's experiment page and the HTML report of
// `agentrace eval -o report.html` draw an experiment one way; each decides where a case leads.

import { badge, fill, h, relTime } from './dom.js';
import { fmtCost, fmtInt, fmtLocal, fmtMs, parseMs } from './format.js';

/**
 * @typedef {{ id: string, name: string, workflow: string, dataset: string, status: string,
 *   started_at: string | null, ended_at: string | null, runs: number, repeat: number,
 *   metadata: Record<string, unknown> }} ExperimentJson
 * @typedef {{ name: string, value: number | null, label: string | null, explanation: string | null,
 *   passed: boolean | null, error: string | null }} ScoreJson
 * @typedef {{ id: string, attempt: number, trace_id: string | null, status: string | null,
 *   missing: boolean, passed: boolean, error: string | null, duration_ms: number | null,
 *   tokens: number, cost_usd: number | null, scores: ScoreJson[] }} CaseJson
 * @typedef {{ name: string, n: number, mean: number | null, pass_rate: number | null, errors: number }} ScorerJson
 * @typedef {{ runs: number, ran: number, passed: number, failed: number, missing: number,
 *   pass_rate: number, tokens: number, cost_usd: number | null, p50_ms: number | null,
 *   p95_ms: number | null }} SummaryJson
 * @typedef {{ experiment: ExperimentJson, summary: SummaryJson, scorers: ScorerJson[], cases: CaseJson[] }} ReportJson
 * @typedef {{ name: string, pairs: number, mean_a: number | null, mean_b: number | null,
 *   change: number | null, ci_low: number | null, ci_high: number | null, improved: number,
 *   regressed: number, unchanged: number, p_value: number | null, verdict: string, worse: boolean }} ScorerCompareJson
 * @typedef {{ case: string, scorer: string, a: number | null, b: number | null,
 *   a_passed: boolean | null, b_passed: boolean | null, regressed: boolean }} ChangeJson
 * @typedef {{ a: string, b: string, scorers: ScorerCompareJson[], changes: ChangeJson[] }} CompareJson
 */

/**
 * A number as the reports print it: at most three decimals, '—' when absent.
 * @param {number | null | undefined} v
 */
export function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return '—';
  return String(Math.round(v * 1000) / 1000);
}
/** @param {number | null | undefined} r a rate in 0..1 */
export function fmtRate(r) {
  if (r === null || r === undefined || !isFinite(r)) return '—';
  return (Math.round(r * 1000) / 10).toFixed(1) + '%';
}
/** @param {number | null | undefined} v a change, signed */
export function fmtSigned(v) {
  if (v === null || v === undefined || !isFinite(v)) return '—';
  return (v > 0 ? '+' : '') + fmtNum(v);
}
/** @param {ExperimentJson} e */
export const casesOf = (e) => Math.round(e.runs / Math.max(1, e.repeat || 1));

/** @param {string | null} iso */
export function startedCell(iso) {
  const ms = iso ? parseMs(iso) : NaN;
  return isFinite(ms) ? h('div', { class: 'cell-time' }, h('span', { class: 'nowrap' }, fmtLocal(ms)), relTime(ms)) : h('span', { class: 'faint' }, '—');
}

/**
 * A score as a table cell's content: its value (or label), marked passed or failed, its
 * explanation or error on hover.
 * @param {ScoreJson | undefined} s
 */
export function scoreCell(s) {
  if (!s) return h('span', { class: 'faint' }, '—');
  const text = s.error ? 'error' : s.value !== null && s.value !== undefined ? fmtNum(s.value) : s.label || (s.passed === null ? '—' : s.passed ? 'pass' : 'fail');
  const verdict = s.error ? 'fail' : s.passed === true ? 'pass' : s.passed === false ? 'fail' : '';
  return h('span', { class: 'score ' + verdict, title: s.error || s.explanation || '', dataset: { verdict: verdict } }, text, verdict ? (verdict === 'pass' ? ' ✓' : ' ✗') : null);
}

/**
 * @typedef {{ key: string, dir: 1 | -1 }} Sort
 */

/**
 * The value a case sorts by under `key` ('case', 'status', 'passed', 'duration', 'tokens',
 * 'cost' or 'score:<name>'); absent values sort last either way.
 * @param {CaseJson} c
 * @param {string} key
 * @returns {string | number | null}
 */
export function sortValue(c, key) {
  if (key === 'case') return c.id + '\u0000' + String(c.attempt).padStart(6, '0');
  if (key === 'status') return c.status;
  if (key === 'passed') return c.passed ? 1 : 0;
  if (key === 'duration') return c.duration_ms;
  if (key === 'tokens') return c.tokens;
  if (key === 'cost') return c.cost_usd;
  if (key.startsWith('score:')) {
    const s = c.scores.find((x) => x.name === key.slice(6));
    if (!s) return null;
    if (s.value !== null && s.value !== undefined) return s.value;
    return s.passed === null || s.passed === undefined ? null : s.passed ? 1 : 0;
  }
  return null;
}

/**
 * @param {CaseJson[]} cases
 * @param {Sort} sort
 */
export function sortCases(cases, sort) {
  return cases.slice().sort(function (x, y) {
    const a = sortValue(x, sort.key), b = sortValue(y, sort.key);
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
    const d = typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
    return d * sort.dir || x.id.localeCompare(y.id);
  });
}

/**
 * How an experiment is shown: its sort and filter (changed in place by the page's controls),
 * where a case leads, what sits beside the title, and what to do after each drawing.
 * @typedef {{ sort: Sort, failingOnly: boolean, caseLink: (c: CaseJson) => Node,
 *   actions?: Node | null, onDraw?: (shown: number) => void }} ExperimentView
 */

/**
 * Draws the experiment of report `r` into `root`, and again whenever its sort or filter changes.
 * @param {HTMLElement} root
 * @param {ReportJson} r
 * @param {ExperimentView} opts
 */
export function drawExperiment(root, r, opts) {
  const e = r.experiment, s = r.summary, sort = opts.sort;
  /** @type {string[]} */
  const names = [];
  for (const sc of r.scorers) names.push(sc.name);
  for (const c of r.cases) for (const x of c.scores) if (names.indexOf(x.name) < 0) names.push(x.name);
  const repeated = (e.repeat || 1) > 1;

  const summary = h('div', { class: 'card exp-summary' }, h('table', { class: 'kv' },
    [['Workflow', e.workflow], ['Dataset', e.dataset], ['Status', badge(e.status)], ['Started', startedCell(e.started_at)],
      ['Runs', fmtInt(s.runs) + (repeated ? ' (' + fmtInt(casesOf(e)) + ' cases × ' + e.repeat + ')' : '')],
      ['Passed', fmtInt(s.passed) + ' of ' + fmtInt(s.runs) + ' (' + fmtRate(s.pass_rate) + ')' + (s.missing ? ', ' + fmtInt(s.missing) + ' missing' : '')],
      ['Tokens', fmtInt(s.tokens)], ['Cost', fmtCost(s.cost_usd)],
      ['Duration p50 / p95', (s.p50_ms === null ? '—' : fmtMs(s.p50_ms)) + ' / ' + (s.p95_ms === null ? '—' : fmtMs(s.p95_ms))],
    ].map(([k, v]) => h('tr', null, h('td', { class: 'k' }, k), h('td', null, v)))));

  const scorers = r.scorers.length ? h('div', { class: 'card' }, h('table', { class: 'traces scorers' },
    h('thead', null, h('tr', null, h('th', null, 'Scorer'), h('th', { class: 'num' }, 'Scored'), h('th', { class: 'num' }, 'Mean'),
      h('th', { class: 'num' }, 'Pass rate'), h('th', { class: 'num' }, 'Errors'))),
    h('tbody', null, r.scorers.map((sc) => h('tr', { dataset: { scorer: sc.name } }, h('td', null, sc.name), h('td', { class: 'num' }, fmtInt(sc.n)),
      h('td', { class: 'num' }, fmtNum(sc.mean)), h('td', { class: 'num' }, fmtRate(sc.pass_rate)), h('td', { class: 'num' }, fmtInt(sc.errors))))))) : null;

  /**
   * A header that sorts by `key` when clicked.
   * @param {string} key
   * @param {string} text
   * @param {string} [cls]
   */
  const th = (key, text, cls) => {
    const on = sort.key === key;
    return h('th', { class: (cls || '') + ' sortable', 'aria-sort': on ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none', dataset: { sort: key } },
      h('button', { type: 'button', class: 'th-sort', onclick: function () { opts.sort = { key: key, dir: on ? /** @type {1 | -1} */ (-sort.dir) : 1 }; drawExperiment(root, r, opts); } },
        text, on ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''));
  };
  const shown = sortCases(opts.failingOnly ? r.cases.filter((c) => !c.passed) : r.cases, sort);
  const failing = r.cases.filter((c) => !c.passed).length;
  const filter = h('label', { class: 'failing-only' }, h('input', { type: 'checkbox', name: 'failing', checked: opts.failingOnly,
    onchange: function (/** @type {Event} */ ev) { opts.failingOnly = /** @type {HTMLInputElement} */ (ev.target).checked; drawExperiment(root, r, opts); } }), ' Failing only');
  const rows = shown.map((c) => h('tr', { dataset: { caseId: c.id, passed: String(c.passed) }, class: c.passed ? '' : 'failed' },
    h('td', { class: 'c-case' }, c.trace_id ? opts.caseLink(c) : h('span', { title: 'not run' }, c.id),
      repeated ? h('span', { class: 'sub' }, ' #' + c.attempt) : null, c.error ? h('div', { class: 'err', title: c.error }, c.error) : null),
    h('td', { class: 'c-status' }, c.status ? badge(c.status) : h('span', { class: 'faint' }, c.missing ? 'missing' : 'not run')),
    h('td', { class: 'c-passed' }, h('span', { class: 'score ' + (c.passed ? 'pass' : 'fail') }, c.passed ? 'pass ✓' : 'fail ✗')),
    names.map((n) => h('td', { class: 'c-score num', dataset: { scorer: n } }, scoreCell(c.scores.find((x) => x.name === n)))),
    h('td', { class: 'num' }, c.duration_ms === null ? '—' : fmtMs(c.duration_ms)),
    h('td', { class: 'num' }, fmtInt(c.tokens)),
    h('td', { class: 'num' }, fmtCost(c.cost_usd))));
  const cases = h('div', { class: 'card' }, h('table', { class: 'traces cases' },
    h('thead', null, h('tr', null, th('case', 'Case'), th('status', 'Status'), th('passed', 'Result'),
      names.map((n) => th('score:' + n, n, 'num')), th('duration', 'Duration', 'num'), th('tokens', 'Tokens', 'num'), th('cost', 'Cost', 'num'))),
    h('tbody', null, rows)));

  fill(root,
    h('div', { class: 'page-title' }, h('h1', null, e.name), h('span', { class: 'id' }, e.id), opts.actions || null),
    summary,
    scorers ? h('h3', null, 'Scorers') : null, scorers,
    h('div', { class: 'list-bar' }, h('h3', null, 'Cases'), h('span', { class: 'count' }, fmtInt(shown.length) + ' of ' + fmtInt(r.cases.length) + (failing ? ', ' + fmtInt(failing) + ' failing' : '')),
      h('span', { class: 'spacer' }), filter),
    cases);
  if (opts.onDraw) opts.onDraw(shown.length);
}
