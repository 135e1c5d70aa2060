// @ts-check
// The entry point of `agentrace export --format html`: the same waterfall and detail pane as
// serve's trace page, drawn from the traces embedded in the page (`#trace-data`, in the JSON
// shape of `/api/traces/<id>`) instead of the API. The export inlines this module with the
// ones it imports, so this file and those must not use the network: no api.js, no live
// updates, no links to pages that only serve has. Several traces get a tab each, and the
// traces of one conversation a tab with its turns too.
//
// When it has drawn, the page sets `data-rendered="N spans"` and `data-traces` on `<body>`;
// the headless-browser test reads them (with `data-errors`, set by the page's error reporter).

import { conversationEls } from './conversation.js';
import { byId, h } from './dom.js';
import { app, setCrumbs, setState } from './shell.js';
import { traceView } from './waterfall.js';

/** @type {{ traces?: unknown }} */
const data = JSON.parse(byId('trace-data').textContent || '{}');
/** @type {import('./model.js').TraceJson[]} */
const traces = Array.isArray(data.traces) ? data.traces : [];
// Traces of one conversation also get its turns, as serve's conversation page shows them.
const group = traces.length > 1 && traces.every((t) => t.group_id && t.group_id === traces[0].group_id) ? String(traces[0].group_id) : null;
const tabs = byId('tabs');
/** @type {ReturnType<typeof traceView> | null} */
let view = null;

/** @param {number} k the trace to show, or -1 for the conversation */
function show(k) {
  if (view) view.destroy();
  view = null;
  app.replaceChildren();
  if (k < 0 && group !== null) {
    app.className = '';
    app.dataset.page = 'group';
    setCrumbs([{ text: 'Conversation ' + group }]);
    document.title = group + ' — conversation — agentrace';
    const turn = (/** @type {import('./model.js').TraceJson} */ t) => {
      const at = traces.indexOf(t);
      return h('button', { type: 'button', class: 'btn link t-name', onclick: function () { show(at); } }, t.name || t.trace_id);
    };
    app.appendChild(h('div', { class: 'page convo' }, conversationEls(group, traces, turn)));
    app.dataset.loaded = group;
  } else {
    app.className = 'fixed';
    app.dataset.page = 'trace';
    view = traceView({ wanted: null, links: false });
    app.appendChild(view.page);
    view.setModel(traces[k], true);
    app.dataset.loaded = String(traces[k].trace_id);
  }
  for (const tab of Array.from(tabs.children)) {
    const on = tab instanceof HTMLElement && Number(tab.dataset.tab) === k;
    tab.classList.toggle('active', on);
    tab.setAttribute('aria-selected', String(on));
  }
}

tabs.hidden = traces.length < 2;
traces.forEach(function (t, k) {
  tabs.appendChild(h('button', { type: 'button', role: 'tab', title: t.trace_id, dataset: { tab: String(k) }, onclick: function () { show(k); } }, t.name || t.trace_id));
});
if (group !== null) {
  tabs.appendChild(h('button', { type: 'button', role: 'tab', title: 'The traces of ' + group + ' as turns', dataset: { tab: '-1' }, onclick: function () { show(-1); } }, 'Conversation'));
}
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
