// @ts-check
// The Experiments pages of serve (`agentrace eval`'s experiments): the list (`/experiments`),
// one experiment with its cases and every score (`/experiments/<id>`), and two experiments
// side by side (`/experiments/compare?a=&b=`). They read /api/experiments, /api/experiments/<id>
// and /api/compare: the JSON of `list --experiments`, `show EXPERIMENT` and `eval compare`, so
// the pages show what the CLI prints. Every name and value reaches the page as text (dom.js).

import { api, errorNotice, serial } from './api.js';
import { badge, fill, h, link, relTime, tracePath } from './dom.js';
import { fmtCost, fmtInt, fmtLocal, fmtMs, parseMs } from './format.js';
import { app, setCrumbs, setState } from './shell.js';

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

/** @param {string} id */
export const experimentPath = (id) => '/experiments/' + encodeURIComponent(id);
/**
 * @param {string} a the baseline
 * @param {string} b
 */
export const comparePath = (a, b) => '/experiments/compare?' + new URLSearchParams({ a: a, b: b }).toString();

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
function fmtSigned(v) {
  if (v === null || v === undefined || !isFinite(v)) return '—';
  return (v > 0 ? '+' : '') + fmtNum(v);
}
/** @param {ExperimentJson} e */
const casesOf = (e) => Math.round(e.runs / Math.max(1, e.repeat || 1));

/** @param {string | null} iso */
function started(iso) {
  const ms = iso ? parseMs(iso) : NaN;
  return isFinite(ms) ? h('div', { class: 'cell-time' }, h('span', { class: 'nowrap' }, fmtLocal(ms)), relTime(ms)) : h('span', { class: 'faint' }, '—');
}

/**
 * A score as a table cell's content: its value (or label), marked passed or failed, its
 * explanation or error on hover.
 * @param {ScoreJson | undefined} s
 */
function scoreCell(s) {
  if (!s) return h('span', { class: 'faint' }, '—');
  const text = s.error ? 'error' : s.value !== null && s.value !== undefined ? fmtNum(s.value) : s.label || (s.passed === null ? '—' : s.passed ? 'pass' : 'fail');
  const verdict = s.error ? 'fail' : s.passed === true ? 'pass' : s.passed === false ? 'fail' : '';
  return h('span', { class: 'score ' + verdict, title: s.error || s.explanation || '', dataset: { verdict: verdict } }, text, verdict ? (verdict === 'pass' ? ' ✓' : ' ✗') : null);
}

// ---- the list ----

/** @returns {import('./shell.js').Page} */
export function experimentsPage() {
  document.title = 'Experiments — agentrace';
  setCrumbs([{ text: 'Traces', href: '/' }, { text: 'Experiments' }]);
  let dead = false;
  /** @type {string} the baseline picked for a comparison ('' when none; `?baseline=ID` from an experiment's page) */
  let baseline = new URLSearchParams(location.search).get('baseline') || '';
  /** @type {ExperimentJson[]} */
  let list = [];
  /** @type {Map<string, number>} pass rates, as the reports arrive */
  const rates = new Map();
  const hint = h('span', { class: 'faint' }, 'Pick a baseline, then compare another experiment with it.');
  const body = h('div', { class: 'list-body' });
  app.appendChild(h('div', { class: 'page experiments' },
    h('div', { class: 'page-title' }, h('h1', null, 'Experiments')),
    h('div', { class: 'list-bar' }, h('span', { class: 'count' }), h('span', { class: 'spacer' }), hint), body));

  function draw() {
    if (!list.length) {
      body.replaceChildren(h('div', { class: 'notice', dataset: { empty: 'store' } }, 'No experiments yet. Run one — ',
        h('code', null, 'agentrace eval workflows/eval/support-answers.yaml --dataset workflows/eval/cases.jsonl --offline'), '.'));
      return;
    }
    const rows = list.map(function (e) {
      const rate = rates.get(e.id);
      const pick = e.id === baseline
        ? h('span', { class: 'chip', dataset: { baseline: 'yes' } }, 'baseline')
        : baseline
          ? h('a', { href: comparePath(baseline, e.id), 'data-nav': true, class: 'btn small', dataset: { compare: e.id } }, 'Compare')
          : null;
      return h('tr', { dataset: { experimentId: e.id } },
        h('td', { class: 'c-name' }, h('div', { class: 'cell-name' }, link(experimentPath(e.id), e.name, 't-name'), h('span', { class: 'sub', title: e.id }, e.id))),
        h('td', { class: 'c-workflow ellipsis', title: e.workflow }, e.workflow),
        h('td', { class: 'c-dataset ellipsis', title: e.dataset }, e.dataset),
        h('td', { class: 'c-status' }, badge(e.status)),
        h('td', { class: 'c-cases num' }, fmtInt(casesOf(e))),
        h('td', { class: 'c-rate num', dataset: { rate: rate === undefined ? '' : String(rate) } }, rate === undefined ? '…' : fmtRate(rate)),
        h('td', { class: 'c-started' }, started(e.started_at)),
        h('td', { class: 'c-pick' },
          h('button', { type: 'button', class: 'btn small' + (e.id === baseline ? ' primary' : ''), 'aria-pressed': e.id === baseline ? 'true' : 'false', dataset: { pickBaseline: e.id },
            onclick: function () { baseline = baseline === e.id ? '' : e.id; draw(); } }, 'Baseline'), ' ', pick));
    });
    body.replaceChildren(h('div', { class: 'card' }, h('table', { class: 'traces experiments-table' },
      h('thead', null, h('tr', null, h('th', { class: 'c-name' }, 'Name'), h('th', { class: 'c-workflow' }, 'Workflow'),
        h('th', { class: 'c-dataset' }, 'Dataset'), h('th', { class: 'c-status' }, 'Status'), h('th', { class: 'c-cases num' }, 'Cases'),
        h('th', { class: 'c-rate num' }, 'Pass rate'), h('th', { class: 'c-started' }, 'Started'), h('th', { class: 'c-pick' }, 'Compare'))),
      h('tbody', null, rows))));
    app.dataset.count = String(list.length);
  }

  const load = serial(async function () {
    try {
      const got = await api('/api/experiments');
      if (dead) return;
      list = Array.isArray(got) ? got : [];
      draw();
      app.dataset.loaded = 'experiments';
      setState('ready');
      // The pass rates come from each experiment's report; the list is drawn without them. A
      // finished experiment's rate does not change, so only running ones are asked again.
      await Promise.all(list.filter((e) => !rates.has(e.id) || e.status === 'running').map(async function (e) {
        try {
          /** @type {ReportJson} */
          const r = await api('/api/experiments/' + encodeURIComponent(e.id));
          rates.set(e.id, r.summary.pass_rate);
        } catch (err) { /* the rate stays unknown */ }
      }));
      if (!dead) { draw(); app.dataset.rates = 'loaded'; }
    } catch (e) {
      if (dead) return;
      body.replaceChildren(errorNotice(e, 'the experiments'));
      setState('error');
    }
  });
  load();
  return { refresh: load, destroy: function () { dead = true; delete app.dataset.rates; } };
}
experimentsPage.pageName = 'experiments';

// ---- one experiment ----

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
 * @param {string} ref the experiment's id, id prefix or name
 * @returns {import('./shell.js').Page}
 */
export function experimentPage(ref) {
  document.title = ref + ' — experiment — agentrace';
  setCrumbs([{ text: 'Experiments', href: '/experiments' }, { text: ref }]);
  let dead = false;
  const q = new URLSearchParams(location.search);
  /** @type {Sort} */
  let sort = { key: q.get('sort') || 'case', dir: q.get('dir') === 'desc' ? -1 : 1 };
  let failingOnly = q.get('failing') === '1';
  /** @type {ReportJson | null} */
  let report = null;
  const root = h('div', { class: 'page experiment' }, h('div', { class: 'loading' }, 'Loading experiment…'));
  app.appendChild(root);

  /** Keeps the sort and the filter in the address, so a view can be shared. */
  function remember() {
    const p = new URLSearchParams();
    if (sort.key !== 'case') p.set('sort', sort.key);
    if (sort.dir < 0) p.set('dir', 'desc');
    if (failingOnly) p.set('failing', '1');
    const s = p.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
  }

  /** @param {ReportJson} r */
  function draw(r) {
    const e = r.experiment, s = r.summary;
    document.title = e.name + ' — experiment — agentrace';
    setCrumbs([{ text: 'Experiments', href: '/experiments' }, { text: e.name }]);
    /** @type {string[]} */
    const names = [];
    for (const sc of r.scorers) names.push(sc.name);
    for (const c of r.cases) for (const x of c.scores) if (names.indexOf(x.name) < 0) names.push(x.name);
    const repeated = (e.repeat || 1) > 1;

    const summary = h('div', { class: 'card exp-summary' }, h('table', { class: 'kv' },
      [['Workflow', e.workflow], ['Dataset', e.dataset], ['Status', badge(e.status)], ['Started', started(e.started_at)],
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
        h('button', { type: 'button', class: 'th-sort', onclick: function () { sort = { key: key, dir: on ? /** @type {1 | -1} */ (-sort.dir) : 1 }; remember(); draw(r); } },
          text, on ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''));
    };
    const shown = sortCases(failingOnly ? r.cases.filter((c) => !c.passed) : r.cases, sort);
    const failing = r.cases.filter((c) => !c.passed).length;
    const filter = h('label', { class: 'failing-only' }, h('input', { type: 'checkbox', name: 'failing', checked: failingOnly,
      onchange: function (/** @type {Event} */ ev) { failingOnly = /** @type {HTMLInputElement} */ (ev.target).checked; remember(); draw(r); } }), ' Failing only');
    const rows = shown.map((c) => h('tr', { dataset: { caseId: c.id, passed: String(c.passed) }, class: c.passed ? '' : 'failed' },
      h('td', { class: 'c-case' }, c.trace_id ? h('a', { href: tracePath(c.trace_id), 'data-nav': true, class: 't-name', title: c.trace_id }, c.id) : h('span', { title: 'not run' }, c.id),
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
      h('div', { class: 'page-title' }, h('h1', null, e.name), h('span', { class: 'id' }, e.id),
        h('a', { href: '/experiments?baseline=' + encodeURIComponent(e.id), 'data-nav': true, class: 'btn small' }, 'Compare with another…')),
      summary,
      scorers ? h('h3', null, 'Scorers') : null, scorers,
      h('div', { class: 'list-bar' }, h('h3', null, 'Cases'), h('span', { class: 'count' }, fmtInt(shown.length) + ' of ' + fmtInt(r.cases.length) + (failing ? ', ' + fmtInt(failing) + ' failing' : '')),
        h('span', { class: 'spacer' }), filter),
      cases);
    app.dataset.count = String(shown.length);
    app.dataset.sort = sort.key + (sort.dir < 0 ? ':desc' : '');
  }

  const load = serial(async function () {
    try {
      /** @type {ReportJson} */
      const r = await api('/api/experiments/' + encodeURIComponent(ref));
      if (dead) return;
      report = r;
      draw(report);
      app.dataset.loaded = r.experiment.id;
      setState('ready');
    } catch (e) {
      if (dead) return;
      root.replaceChildren(errorNotice(e, 'the experiment'));
      setState('error');
    }
  });
  load();
  return { refresh: load, destroy: function () { dead = true; delete app.dataset.sort; } };
}
experimentPage.pageName = 'experiment';

// ---- two experiments side by side ----

/** @returns {import('./shell.js').Page} */
export function comparePage() {
  const q = new URLSearchParams(location.search);
  const a = q.get('a') || '', b = q.get('b') || '';
  document.title = 'Compare experiments — agentrace';
  setCrumbs([{ text: 'Experiments', href: '/experiments' }, { text: 'Compare' }]);
  let dead = false;
  const root = h('div', { class: 'page compare' }, h('div', { class: 'loading' }, 'Comparing…'));
  app.appendChild(root);

  /**
   * @param {CompareJson} cmp
   * @param {ReportJson} ra
   * @param {ReportJson} rb
   */
  function draw(cmp, ra, rb) {
    const ea = ra.experiment, eb = rb.experiment;
    document.title = eb.name + ' vs ' + ea.name + ' — agentrace';
    setCrumbs([{ text: 'Experiments', href: '/experiments' }, { text: ea.name + ' → ' + eb.name }]);
    /** @param {ReportJson} r */
    const traces = (r) => new Map(r.cases.filter((c) => c.trace_id).map((c) => [c.id, /** @type {string} */ (c.trace_id)]));
    const ta = traces(ra), tb = traces(rb);
    /**
     * @param {ExperimentJson} e
     * @param {ReportJson} r
     * @param {string} role
     */
    const head = (e, r, role) => h('div', { class: 'card cmp-side', dataset: { side: role } },
      h('div', { class: 'muted' }, role === 'a' ? 'A (baseline)' : 'B'), h('div', null, link(experimentPath(e.id), e.name, 't-name')),
      h('div', { class: 'id' }, e.id), h('div', null, 'pass rate ' + fmtRate(r.summary.pass_rate) + ' · ' + fmtInt(r.summary.runs) + ' runs'));
    /** @param {ScorerCompareJson} s */
    const tone = (s) => (s.worse ? 'worse' : /better/i.test(s.verdict) ? 'better' : 'same');
    const scorers = h('div', { class: 'card' }, h('table', { class: 'traces cmp-scorers' },
      h('thead', null, h('tr', null, h('th', null, 'Scorer'), h('th', { class: 'num' }, 'Pairs'), h('th', { class: 'num' }, 'A mean'), h('th', { class: 'num' }, 'B mean'),
        h('th', { class: 'num' }, 'Change (95% interval)'), h('th', { class: 'num' }, '↑ / ↓ / ='), h('th', { class: 'num' }, 'p (pass/fail)'), h('th', null, 'Verdict'))),
      h('tbody', null, cmp.scorers.map((s) => h('tr', { dataset: { scorer: s.name, worse: String(s.worse) } },
        h('td', null, s.name), h('td', { class: 'num' }, fmtInt(s.pairs)), h('td', { class: 'num' }, fmtNum(s.mean_a)), h('td', { class: 'num' }, fmtNum(s.mean_b)),
        h('td', { class: 'num' }, fmtSigned(s.change), s.ci_low === null ? '' : ' [' + fmtSigned(s.ci_low) + ', ' + fmtSigned(s.ci_high) + ']'),
        h('td', { class: 'num' }, s.improved + ' / ' + s.regressed + ' / ' + s.unchanged),
        h('td', { class: 'num' }, s.p_value === null ? '—' : fmtNum(s.p_value)),
        h('td', { class: 'verdict ' + tone(s) }, s.verdict))))));
    /**
     * @param {Map<string, string>} t
     * @param {string} id
     * @param {number | null} v
     * @param {boolean | null} p
     */
    const side = (t, id, v, p) => {
      const text = (v === null ? (p === null ? '—' : p ? 'pass' : 'fail') : fmtNum(v)) + (p === null || v === null ? '' : p ? ' ✓' : ' ✗');
      const trace = t.get(id);
      return trace ? h('a', { href: tracePath(trace), 'data-nav': true, title: 'Open the trace' }, text) : text;
    };
    const changes = cmp.changes.length
      ? h('div', { class: 'card' }, h('table', { class: 'traces cmp-changes' },
        h('thead', null, h('tr', null, h('th', null, 'Case'), h('th', null, 'Scorer'), h('th', { class: 'num' }, 'A'), h('th', { class: 'num' }, 'B'), h('th', null, 'Change'))),
        h('tbody', null, cmp.changes.map((c) => h('tr', { dataset: { caseId: c.case, regressed: String(c.regressed) }, class: c.regressed ? 'failed' : '' },
          h('td', null, c.case), h('td', null, c.scorer), h('td', { class: 'num' }, side(ta, c.case, c.a, c.a_passed)),
          h('td', { class: 'num' }, side(tb, c.case, c.b, c.b_passed)), h('td', { class: c.regressed ? 'verdict worse' : 'verdict better' }, c.regressed ? 'regressed' : 'improved'))))))
      : h('div', { class: 'notice' }, 'No case changed.');
    root.replaceChildren(
      h('div', { class: 'page-title' }, h('h1', null, 'Compare experiments'),
        h('a', { href: comparePath(eb.id, ea.id), 'data-nav': true, class: 'btn small' }, 'Swap A and B')),
      h('div', { class: 'cmp-sides' }, head(ea, ra, 'a'), head(eb, rb, 'b')),
      h('h3', null, 'Per scorer'), scorers,
      h('h3', null, 'Cases that changed ', h('span', { class: 'muted' }, fmtInt(cmp.changes.length))), changes);
    app.dataset.count = String(cmp.scorers.length);
  }

  const load = serial(async function () {
    if (!a || !b) {
      root.replaceChildren(h('div', { class: 'notice' }, 'Pick two experiments to compare: ', link('/experiments', 'the experiments'), '.'));
      setState('ready');
      return;
    }
    try {
      const [cmp, ra, rb] = await Promise.all([
        api('/api/compare?' + new URLSearchParams({ a: a, b: b }).toString()),
        api('/api/experiments/' + encodeURIComponent(a)),
        api('/api/experiments/' + encodeURIComponent(b)),
      ]);
      if (dead) return;
      draw(cmp, ra, rb);
      app.dataset.loaded = cmp.a + ' ' + cmp.b;
      setState('ready');
    } catch (e) {
      if (dead) return;
      root.replaceChildren(errorNotice(e, 'the comparison'));
      setState('error');
    }
  });
  load();
  return { refresh: load, destroy: function () { dead = true; } };
}
comparePage.pageName = 'compare';
