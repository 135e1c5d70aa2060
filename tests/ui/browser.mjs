// What the browser drivers share (drive.mjs, live.mjs): headless Chromium through
// playwright-core, and a watch on a page for anything a person would notice — a console error
// or warning, a script error, a dialog, a failed request or an HTTP error — collected in
// `problems` with the step it happened in.
//
// Environment: CHROMIUM (the browser binary; default /usr/bin/chromium) and NODE_PATH (a
// node_modules holding playwright-core, see package.json), unless `npm ci` ran in tests/ui.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Launches headless Chromium; without playwright-core, says how to install it and exits 1.
 * @param {string} script the driver's name, for the message
 */
export async function launchChromium(script) {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    process.stderr.write(`${script}: cannot load playwright-core: install it (npm ci in tests/ui, or ` +
      'npm install --prefix DIR playwright-core and NODE_PATH=DIR/node_modules)\n' + e.message + '\n');
    process.exit(1);
  }
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
}

/**
 * Records on `problems` everything on `page` that a person would notice, naming `step.name`.
 * @param {any} page
 * @param {{ name: string }} step
 * @param {string[]} problems
 */
export function watchPage(page, step, problems) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      const loc = m.location();
      problems.push(`console ${m.type()} during "${step.name}": ${m.text()}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`page error during "${step.name}": ${e.message}`));
  page.on('dialog', async (d) => {
    problems.push(`a ${d.type()} dialog fired during "${step.name}": ${JSON.stringify(d.message())}`);
    await d.dismiss().catch(() => {});
  });
  page.on('requestfailed', (r) => {
    const err = r.failure() ? r.failure().errorText : 'failed';
    // The event stream is cut whenever the page goes away; that is not a failure.
    if (err.includes('ERR_ABORTED') && new URL(r.url()).pathname === '/api/events') return;
    problems.push(`request failed during "${step.name}": ${r.method()} ${r.url()}: ${err}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} during "${step.name}": ${r.request().method()} ${r.url()}`);
  });
}

/**
 * What a person reads on a trace page (serve's, or the HTML export's, which is the same
 * front-end): the header's facts and error, the legend, the axis, and for each of `spans` (the
 * trace's span records, at most `limit` of them) its detail pane as text with the parts a
 * reader looks for picked out: the error box, the tool calls, the chat's roles and the tokens.
 * Each span is selected by typing its id into the find box, as a person could.
 * @param {any} p a page showing the trace
 * @param {{ span_id: string, name: string, kind: string }[]} spans
 * @param {number} [limit]
 */
export async function readTracePage(p, spans, limit = 60) {
  const head = await p.evaluate(() => {
    const text = (/** @type {Element | null} */ e) => {
      if (!e) return null;
      // The relative time ("9s ago") ticks; it is not what two pages are compared on.
      const copy = /** @type {HTMLElement} */ (e.cloneNode(true));
      copy.querySelectorAll('[data-rel]').forEach((r) => (r.closest('.muted') || r).remove());
      return (copy.innerText || copy.textContent || '').trim();
    };
    const facts = {};
    for (const d of document.querySelectorAll('.trace-head .facts > div')) {
      facts[text(d.querySelector('dt'))] = text(d.querySelector('dd'));
    }
    return {
      title: text(document.querySelector('.trace-head h1')),
      facts,
      error: document.querySelector('.trace-head .error-box')?.innerText ?? null,
      legend: Array.from(document.querySelectorAll('.wf-tools .legend > span')).map((e) => e.textContent),
      ticks: Array.from(document.querySelectorAll('.wf-axis .ticks .tick')).map((e) => e.textContent),
    };
  });
  const find = '.wf-tools input[type="search"]';
  const read = [];
  for (const s of spans.slice(0, limit)) {
    await p.fill(find, s.span_id);
    await p.waitForFunction((id) => document.querySelector('.detail')?.getAttribute('data-span-id') === id, s.span_id)
      .catch(() => { throw new Error(`span ${s.span_id} (${s.name}) could not be selected on ${p.url()}`); });
    read.push(await p.evaluate((s) => {
      const pane = document.querySelector('.detail');
      const tokens = Array.from(pane.querySelectorAll('table.kv tr')).find((r) => r.querySelector('td.k')?.textContent === 'tokens');
      return {
        id: s.span_id,
        name: s.name,
        kind: s.kind,
        detail: pane.innerText,
        error: pane.querySelector('.error-box')?.innerText ?? null,
        calls: Array.from(pane.querySelectorAll('.call')).map((c) => ({
          fn: c.querySelector('.fn')?.innerText ?? '',
          args: c.querySelector('pre')?.innerText ?? null,
        })),
        chat: Array.from(pane.querySelectorAll('.chat .msg .role')).map((r) => r.firstChild?.textContent ?? ''),
        tokens: tokens ? tokens.children[1].textContent : null,
      };
    }, s));
  }
  await p.fill(find, '');
  await p.press(find, 'Escape');
  return { ...head, spans: read };
}

/**
 * Where two readings of a trace page (readTracePage) differ, as a message; null if they read
 * the same.
 * @param {Record<string, any>} ours serve's page
 * @param {Record<string, any>} theirs the HTML export
 */
export function readingsDiffer(ours, theirs) {
  for (const key of Object.keys(ours)) {
    if (key === 'spans') continue;
    const a = JSON.stringify(ours[key], null, 1), b = JSON.stringify(theirs[key], null, 1);
    if (a !== b) return `the HTML export's ${key} differs from serve's:\n--- serve\n${a}\n--- HTML export\n${b}`;
  }
  for (const [k, s] of ours.spans.entries()) {
    const t = theirs.spans[k];
    if (JSON.stringify(s) !== JSON.stringify(t)) {
      return `the details of span ${JSON.stringify(s.name)} differ:\n--- serve\n${s.detail}\n--- HTML export\n${t ? t.detail : '(none)'}`;
    }
  }
  return null;
}
