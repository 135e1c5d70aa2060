// @ts-check
// The entry point of `agentrace eval ... -o report.html`: the experiment as serve's experiment
// page draws it (experiment_view.js), and each case's trace as serve's trace page draws it
// (waterfall.js), all from the report and traces embedded in the page (`#trace-data`:
// `{report, traces}`, the JSON of `show EXPERIMENT` and of `/api/traces/<id>`). Inlined with
// the modules it imports, so neither it nor they use the network; it shares their one scope,
// so its top-level names are its own (`eval…`).
//
// When it has drawn, the page sets `data-rendered="N cases"` and `data-traces` on `<body>`;
// the headless-browser test reads them (with `data-errors`, set by the page's error reporter).

import { byId, fill, h } from './dom.js';
import { drawExperiment } from './experiment_view.js';
import { app, setCrumbs, setState } from './shell.js';
import { traceView } from './waterfall.js';

/** @type {{ report?: import('./experiment_view.js').ReportJson, traces?: unknown }} */
const evalData = JSON.parse(byId('trace-data').textContent || '{}');
/** @type {Map<string, import('./model.js').TraceJson>} */
const evalTraces = new Map((Array.isArray(evalData.traces) ? evalData.traces : []).map((t) => [String(t.trace_id), t]));
const evalTabs = byId('tabs');
/** @type {ReturnType<typeof traceView> | null} */
let evalTraceView = null;
/** @type {import('./experiment_view.js').ExperimentView} */
const evalView = {
  sort: { key: 'case', dir: 1 },
  failingOnly: false,
  caseLink: (c) => h('button', { type: 'button', class: 'btn link t-name', title: c.trace_id || '', dataset: { traceId: c.trace_id || '' },
    disabled: !evalTraces.has(String(c.trace_id)), onclick: function () { evalShowCase(c.id, String(c.trace_id)); } }, c.id),
  actions: null,
  onDraw: function (shown) { app.dataset.count = String(shown); },
};

/**
 * The tabs: the experiment, and the case on screen.
 * @param {string | null} caseId
 */
function evalSetTabs(caseId) {
  fill(evalTabs, h('button', { type: 'button', role: 'tab', class: caseId ? '' : 'active', dataset: { tab: 'experiment' }, onclick: evalShowExperiment }, 'Experiment'),
    caseId ? h('button', { type: 'button', role: 'tab', class: 'active', dataset: { tab: 'case' } }, 'Case ' + caseId) : null);
  evalTabs.hidden = false;
}

function evalShowExperiment() {
  if (evalTraceView) evalTraceView.destroy();
  evalTraceView = null;
  const report = evalData.report;
  app.replaceChildren();
  app.className = '';
  app.dataset.page = 'experiment';
  evalSetTabs(null);
  if (!report) {
    setCrumbs([{ text: 'No experiment' }]);
    app.appendChild(h('div', { class: 'notice' }, 'This file holds no experiment.'));
    return;
  }
  setCrumbs([{ text: 'Experiment ' + report.experiment.name }]);
  document.title = report.experiment.name + ' — experiment — agentrace';
  const root = h('div', { class: 'page experiment' });
  app.appendChild(root);
  drawExperiment(root, report, evalView);
  app.dataset.loaded = report.experiment.id;
}

/**
 * @param {string} caseId
 * @param {string} traceId
 */
function evalShowCase(caseId, traceId) {
  const trace = evalTraces.get(traceId);
  if (!trace) return;
  if (evalTraceView) evalTraceView.destroy();
  app.replaceChildren();
  app.className = 'fixed';
  app.dataset.page = 'trace';
  evalSetTabs(caseId);
  evalTraceView = traceView({ wanted: null, links: false });
  app.appendChild(evalTraceView.page);
  evalTraceView.setModel(trace, true);
  app.dataset.loaded = traceId;
  window.scrollTo(0, 0);
}

evalShowExperiment();
setState('ready');
document.body.dataset.traces = String(evalTraces.size);
document.body.dataset.rendered = (evalData.report ? evalData.report.cases.length : 0) + ' cases';
