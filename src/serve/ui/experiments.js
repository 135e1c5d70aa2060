// @ts-check
// The Experiments pages of serve (`agentrace eval`'s experiments): the list (`/experiments`),
// one experiment with its cases and every score (`/experiments/<id>`), and two experiments
// side by side (`/experiments/compare?a=&b=`). They read /api/experiments, /api/experiments/<id>
// and /api/compare: the JSON of `list --experiments`, `show EXPERIMENT` and `eval compare`, so
// the pages show what the CLI prints. Every name and value reaches the page as text (dom.js).

import { api, errorNotice, serial } from './api.js';
import { badge, h, link, tracePath } from './dom.js';
import { casesOf, drawExperiment, fmtNum, fmtRate, fmtSigned, startedCell } from './experiment_view.js';
import { fmtInt } from './format.js';
import { app, setCrumbs, setState } from './shell.js';

/**
 * @typedef {import('./experiment_view.js').ExperimentJson} ExperimentJson
 * @typedef {import('./experiment_view.js').ReportJson} ReportJson
 * @typedef {import('./experiment_view.js').Sort} Sort
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
        h('td', { class: 'c-started' }, startedCell(e.started_at)),
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

  /** @type {import('./experiment_view.js').ExperimentView} */
  const view = {
    sort: sort,
    failingOnly: failingOnly,
    caseLink: (c) => h('a', { href: tracePath(String(c.trace_id)), 'data-nav': true, class: 't-name', title: c.trace_id || '' }, c.id),
    actions: null,
    onDraw: function (shown) {
      sort = view.sort;
      failingOnly = view.failingOnly;
      remember();
      app.dataset.count = String(shown);
      app.dataset.sort = sort.key + (sort.dir < 0 ? ':desc' : '');
    },
  };

  /** @param {ReportJson} r */
  function draw(r) {
    document.title = r.experiment.name + ' — experiment — agentrace';
    setCrumbs([{ text: 'Experiments', href: '/experiments' }, { text: r.experiment.name }]);
    view.actions = h('a', { href: '/experiments?baseline=' + encodeURIComponent(r.experiment.id), 'data-nav': true, class: 'btn small' }, 'Compare with another…');
    drawExperiment(root, r, view);
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
