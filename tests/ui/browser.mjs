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
