// @ts-check
// The JSON API of the server that served the page: the one place the UI uses the network.
// The HTML export does not include this module (it reads its traces from the page).

import { h } from './dom.js';

/** A failed API call: the HTTP status (0 when the server could not be reached) and why. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) { super(message); this.status = status; }
}

/**
 * @param {string} path
 * @returns {Promise<any>} the JSON body
 */
export async function api(path) {
  let res;
  try {
    res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'The agentrace server cannot be reached (' + (e instanceof Error ? e.message : String(e)) + '). Is `agentrace serve` still running?');
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = undefined; }
  if (!res.ok) {
    if (res.status === 401) {
      throw new ApiError(401, 'open ' + location.origin + location.pathname + '?token=… once, with the token `agentrace serve` was started with (--token or AGENTRACE_TOKEN); the browser keeps it in a cookie.');
    }
    const msg = body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status + ' ' + res.statusText;
    throw new ApiError(res.status, msg);
  }
  if (body === undefined) throw new ApiError(res.status, 'The server answered ' + path + ' with something that is not JSON.');
  return body;
}

/**
 * @param {unknown} err
 * @param {string} what
 */
export function errorNotice(err, what) {
  const status = err instanceof ApiError ? err.status : undefined;
  const title = status === 401 ? 'Unauthorised' : status === 403 ? 'Forbidden' : status === 404 ? 'Not found' : status === 400 ? 'Bad request' : 'Could not load ' + what;
  return h('div', { class: 'notice error', role: 'alert' }, h('strong', null, title + ': '), String(err instanceof Error ? err.message : err));
}
/**
 * Runs `fn` once at a time; calls made meanwhile collapse into one more run afterwards.
 * @param {() => Promise<void>} fn
 * @returns {() => Promise<void>}
 */
export function serial(fn) {
  let busy = false, again = false;
  return async function run() {
    if (busy) { again = true; return; }
    busy = true;
    try { await fn(); } finally {
      busy = false;
      if (again) { again = false; run(); }
    }
  };
}

