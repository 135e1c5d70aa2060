// @ts-check
// The app shell that every page draws into: the `#app` element, its loading state (which the
// browser tests wait on), the breadcrumbs in the top bar, and in-page navigation (the router
// in main.js installs itself here, so pages link without importing the router).

import { byId, h, link } from './dom.js';

export const app = byId('app');
export const crumbs = byId('crumbs');

/** Where `navigate` sends the page: main.js puts its router here. */
export const router = { render: () => {} };

/**
 * @param {'loading' | 'ready' | 'error'} state
 */
export function setState(state) { app.dataset.state = state; }

/** @param {Array<{ text: string, href?: string }>} items */
export function setCrumbs(items) {
  crumbs.replaceChildren();
  items.forEach(function (it, i) {
    if (i > 0) crumbs.appendChild(h('span', { class: 'sep' }, '›'));
    if (it.href) crumbs.appendChild(link(it.href, it.text));
    else crumbs.appendChild(h('span', { class: 'here', title: it.text }, it.text));
  });
}

/**
 * @param {string} url
 * @param {boolean} [replace]
 */
export function navigate(url, replace) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  router.render();
  window.scrollTo(0, 0);
}

/**
 * What a page gives the router: it fetches again on `refresh` (a change in the store), keeps
 * clocks current on `tick`, and lets go of timers and listeners on `destroy`.
 * @typedef {{ refresh?: () => void, tick?: () => void, destroy?: () => void }} Page
 */
