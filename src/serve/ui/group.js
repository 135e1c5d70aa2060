// @ts-check
// Page 3 of serve: a conversation (conversation.js draws it), fetched from the API, with each
// turn linking to its trace's page.

import { api, errorNotice, serial } from './api.js';
import { conversationEls } from './conversation.js';
import { h, tracePath } from './dom.js';
import { app, setCrumbs, setState } from './shell.js';

/** @typedef {import('./model.js').TraceJson} TraceJson */

/**
 * @param {string} group
 * @returns {import('./shell.js').Page}
 */
export function groupPage(group) {
  document.title = group + ' — conversation — agentrace';
  setCrumbs([{ text: 'Traces', href: '/' }, { text: 'Conversation ' + group }]);
  let dead = false;
  const root = h('div', { class: 'page convo' }, h('div', { class: 'loading' }, 'Loading conversation…'));
  app.appendChild(root);

  /**
   * @param {TraceJson[]} traces
   */
  function draw(traces) {
    root.replaceChildren(...conversationEls(group, traces, (t) => h('a', { href: tracePath(t.trace_id), 'data-nav': true, class: 't-name' }, t.name || t.trace_id)));
    app.dataset.count = String(traces.length);
  }

  const load = serial(async function () {
    try {
      const traces = await api('/api/groups/' + encodeURIComponent(group));
      if (dead) return;
      draw(Array.isArray(traces) ? traces : []);
      app.dataset.loaded = group;
      setState('ready');
    } catch (e) {
      if (dead) return;
      root.replaceChildren(errorNotice(e, 'the conversation'));
      setState('error');
    }
  });
  load();
  return { refresh: load, destroy: function () { dead = true; } };
}
groupPage.pageName = 'group';
