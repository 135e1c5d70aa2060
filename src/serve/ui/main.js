// @ts-check
// agentrace serve: the browser UI's entry point (the page loads this one module).
//
// Native ES modules, no bundler and no dependencies; nothing is fetched but the JSON API of
// the server that served it. Pages route on the client with history.pushState: `/` (trace
// list), `/traces/<id>`, `/groups/<group>` (a conversation), `/diff?a=&b=`, and the
// experiments of `agentrace eval`: `/experiments`, `/experiments/<id>`,
// `/experiments/compare?a=&b=`. The page follows the store live: `/api/events` says when
// anything changed, and the page on screen fetches its data again (debounced).

import { byId, h, link } from './dom.js';
import { fmtMs, fmtRel } from './format.js';
import { app, navigate, router, setCrumbs, setState } from './shell.js';
import { listPage } from './list.js';
import { tracePage } from './trace.js';
import { groupPage } from './group.js';
import { diffPage } from './diff.js';
import { comparePage, experimentPage, experimentsPage } from './experiments.js';

/** @typedef {import('./shell.js').Page} Page */

const liveBadge = byId('live');
/** @type {Page | null} the page on screen */
let current = null;

/** @type {Array<[RegExp, ((arg: string) => Page) & { pageName: string }]>} */
const routes = [
  [/^\/$/, listPage],
  [/^\/traces\/([^/]+)\/?$/, tracePage],
  [/^\/groups\/([^/]+)\/?$/, groupPage],
  [/^\/diff\/?$/, diffPage],
  [/^\/experiments\/?$/, experimentsPage],
  [/^\/experiments\/compare\/?$/, comparePage],
  [/^\/experiments\/([^/]+)\/?$/, experimentPage],
];

function render() {
  if (current && current.destroy) current.destroy();
  current = null;
  app.replaceChildren();
  app.className = '';
  delete app.dataset.loaded;
  delete app.dataset.count;
  delete app.dataset.spans;
  setState('loading');
  const path = location.pathname;
  for (const [re, page] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    let arg = m[1];
    if (arg !== undefined) { try { arg = decodeURIComponent(arg); } catch (e) { /* keep raw */ } }
    app.dataset.page = page.pageName;
    current = page(arg);
    return;
  }
  app.dataset.page = 'not-found';
  document.title = 'Not found — agentrace';
  setCrumbs([{ text: 'Not found' }]);
  app.appendChild(h('div', { class: 'notice' }, 'There is no page at ', h('code', null, path), '. ', link('/', 'See all traces'), '.'));
  setState('ready');
}

document.addEventListener('click', function (e) {
  const a = e.target instanceof Element ? e.target.closest('a[data-nav]') : null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  const href = a.getAttribute('href') || '/';
  if (href === location.pathname + location.search) { if (current && current.refresh) current.refresh(); return; }
  navigate(href);
});
window.addEventListener('popstate', render);

// Live updates: one EventSource for the whole app. The server sends the store's change
// counter on connect and after every change; a new value means "fetch what is on screen".
/** @type {{ source: EventSource | null, version: unknown, timer: number, pending: boolean, retry: number }} */
const live = { source: null, version: null, timer: 0, pending: false, retry: 0 };

/**
 * @param {string} state
 * @param {string} text
 */
function setLive(state, text) {
  liveBadge.dataset.live = state;
  liveBadge.textContent = text;
}

function connectLive() {
  if (typeof EventSource === 'undefined') { setLive('closed', 'no live updates'); return; }
  if (live.source) return;
  const es = new EventSource('/api/events');
  live.source = es;
  es.addEventListener('open', function () { setLive('open', 'live'); });
  es.addEventListener('change', function (e) {
    setLive('open', 'live');
    let v = null;
    try { v = JSON.parse(e.data).version; } catch (err) { v = e.data; }
    const first = live.version === null;
    if (!first && v === live.version) return;
    live.version = v;
    if (!first) scheduleRefresh();
  });
  es.addEventListener('error', function () {
    if (es.readyState === EventSource.CLOSED) {
      setLive('closed', 'disconnected');
      es.close();
      if (live.source === es) live.source = null;
      clearTimeout(live.retry);
      live.retry = setTimeout(function () { if (!live.source && !document.hidden) connectLive(); }, 5000);
    } else {
      setLive('reconnecting', 'reconnecting…');
    }
  });
}

function scheduleRefresh() {
  clearTimeout(live.timer);
  live.timer = setTimeout(function () {
    if (document.hidden) { live.pending = true; return; }
    if (current && current.refresh) current.refresh();
  }, 250);
}
// A browser keeps at most six HTTP/1.1 connections per server, and every open tab's event
// stream holds one; a tab that stays hidden lets go of its stream and asks again (and catches
// up, through the version number) when it is shown.
let hiddenTimer = 0;
document.addEventListener('visibilitychange', function () {
  clearTimeout(hiddenTimer);
  if (document.hidden) {
    hiddenTimer = setTimeout(function () {
      if (live.source) { live.source.close(); live.source = null; clearTimeout(live.retry); setLive('closed', 'paused'); }
    }, 30000);
    return;
  }
  if (!live.source) connectLive();
  if (live.pending) { live.pending = false; if (current && current.refresh) current.refresh(); }
});

// One ticker keeps relative times and running clocks current: `data-rel` holds a moment shown
// relative to now, `data-since` the start of something still running. Nothing else may carry them.
let tickCount = 0;
setInterval(function () {
  tickCount++;
  if (tickCount % 10 === 0) {
    for (const el of /** @type {NodeListOf<HTMLElement>} */ (app.querySelectorAll('[data-rel]'))) el.textContent = fmtRel(Number(el.dataset.rel));
  }
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (app.querySelectorAll('[data-since]'))) el.textContent = fmtMs(Date.now() - Number(el.dataset.since)) + '…';
  if (current && current.tick) current.tick();
}, 1000);

router.render = render;
render();
connectLive();
