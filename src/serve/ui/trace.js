// @ts-check
// Page 2 of serve: one trace, as a waterfall with span details, fetched from the API and
// fetched again while it runs.

import { ApiError, api, errorNotice, serial } from './api.js';
import { app, setCrumbs, setState } from './shell.js';
import { traceView } from './waterfall.js';

/**
 * @param {string} id a trace id, a prefix of one, or `last`
 * @returns {import('./shell.js').Page}
 */
export function tracePage(id) {
  document.title = 'Trace — agentrace';
  setCrumbs([{ text: 'Traces', href: '/' }, { text: id }]);
  app.className = 'fixed';
  const view = traceView({ wanted: new URLSearchParams(location.search).get('span'), links: true });
  app.appendChild(view.page);
  let dead = false;
  let loaded = false;
  let fetchId = id; // `last` or a prefix at first; the full id once known, so it stays put
  const load = serial(async function () {
    try {
      const trace = await api('/api/traces/' + encodeURIComponent(fetchId));
      if (dead) return;
      if (trace && typeof trace.trace_id === 'string') fetchId = trace.trace_id;
      view.setModel(trace, !loaded);
      loaded = true;
      app.dataset.loaded = trace.trace_id;
      setState('ready');
    } catch (e) {
      if (dead) return;
      if (loaded && !(e instanceof ApiError && e.status === 404)) return; // keep what is on screen through a passing failure
      loaded = false;
      view.fail(errorNotice(e, 'the trace'));
      setState('error');
    }
  });
  load();

  return {
    refresh: function () { if (!loaded || view.running()) load(); },
    tick: view.tick,
    destroy: function () {
      dead = true;
      view.destroy();
    },
  };
}
tracePage.pageName = 'trace';
