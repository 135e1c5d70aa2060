// @ts-check
// The entry point of `agentrace export --format html`: the same waterfall and detail pane as
// serve's trace page, drawn from the traces embedded in the page (`#trace-data`, in the JSON
// shape of `/api/traces/<id>`) instead of the API. The export inlines this module with the
// ones it imports, so this file and those must not use the network: no api.js, no live
// updates, no links to pages that only serve has. Several traces (a conversation) get a tab
// each.
//
// When it has drawn, the page sets `data-rendered="N spans"` and `data-traces` on `<body>`;
// the headless-browser test reads them (with `data-errors`, set by the page's error reporter).

import { byId, h } from './dom.js';
import { app, setCrumbs, setState } from './shell.js';
import { traceView } from './waterfall.js';

/** @type {{ traces?: unknown }} */
const data = JSON.parse(byId('trace-data').textContent || '{}');
/** @type {import('./model.js').TraceJson[]} */
const traces = Array.isArray(data.traces) ? data.traces : [];
const tabs = byId('tabs');
/** @type {ReturnType<typeof traceView> | null} */
let view = null;

/** @param {number} k */
function show(k) {
  if (view) view.destroy();
  app.replaceChildren();
  app.className = 'fixed';
  view = traceView({ wanted: null, links: false });
  app.appendChild(view.page);
  view.setModel(traces[k], true);
  app.dataset.loaded = String(traces[k].trace_id);
  for (const [j, tab] of Array.from(tabs.children).entries()) {
    tab.classList.toggle('active', j === k);
    tab.setAttribute('aria-selected', String(j === k));
  }
}

tabs.hidden = traces.length < 2;
traces.forEach(function (t, k) {
  tabs.appendChild(h('button', { type: 'button', role: 'tab', title: t.trace_id, onclick: function () { show(k); } }, t.name || t.trace_id));
});
if (traces.length) {
  show(0);
} else {
  setCrumbs([{ text: 'No trace' }]);
  app.appendChild(h('div', { class: 'notice' }, 'This file holds no trace.'));
}
setState('ready');
const spans = traces.reduce((n, t) => n + (Array.isArray(t.spans) ? t.spans.length : 0), 0);
document.body.dataset.traces = String(traces.length);
document.body.dataset.rendered = spans + ' spans';
