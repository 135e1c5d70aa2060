#!/usr/bin/env node
// Reads one trace's page in headless Chromium as a person would, and prints what it shows (one
// JSON line: the header's facts and error, the legend, the axis ticks, and every span's detail
// pane with its error box, tool calls, chat roles and tokens), for the e2e test to assert on.
//
//   node tests/ui/trace_page.mjs --base http://127.0.0.1:PORT --trace TRACE_ID \
//     [--export-html trace.html]
//
// With --export-html (`agentrace export TRACE_ID --format html`), it also opens that file from
// file:// and fails unless it shows exactly what serve's page shows, without fetching anything.
//
// Environment: CHROMIUM and NODE_PATH, as for drive.mjs. Exit 0 with the JSON on stdout; exit 1
// with the reason on stderr (a console error, a script error, a failed request count too);
// exit 2 on bad arguments.
import { launchChromium, readTracePage, readingsDiffer, watchPage } from './browser.mjs';
import { pathToFileURL } from 'node:url';

const USAGE = 'usage: trace_page.mjs --base URL --trace ID [--export-html PATH]';
const opts = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!['base', 'trace', 'export-html'].includes(key) || argv[i + 1] === undefined) {
    process.stderr.write(`trace_page.mjs: bad argument ${JSON.stringify(argv[i])}\n${USAGE}\n`);
    process.exit(2);
  }
  opts[key] = argv[i + 1];
}
if (!opts.base || !opts.trace) {
  process.stderr.write(`trace_page.mjs: --base and --trace are required\n${USAGE}\n`);
  process.exit(2);
}

const TIMEOUT = 15000;
const step = { name: 'start' };
const problems = [];
const browser = await launchChromium('trace_page.mjs');
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watchPage(page, step, problems);

  step.name = "open serve's trace page";
  const base = opts.base.replace(/\/+$/, '');
  await page.goto(`${base}/traces/${encodeURIComponent(opts.trace)}`);
  await page.waitForFunction((id) => {
    const a = document.getElementById('app');
    return a && a.dataset.page === 'trace' && (a.dataset.state === 'error' || (a.dataset.state === 'ready' && a.dataset.loaded === id));
  }, opts.trace);
  const trace = await page.evaluate(async (id) => (await fetch('/api/traces/' + encodeURIComponent(id))).json(), opts.trace);
  step.name = "read serve's trace page";
  const served = await readTracePage(page, trace.spans);

  let exported = null;
  if (opts['export-html']) {
    step.name = 'open the HTML export';
    const file = await context.newPage();
    file.setDefaultTimeout(TIMEOUT);
    watchPage(file, step, problems);
    file.on('request', (r) => { if (!r.url().startsWith('file:')) problems.push(`the HTML export fetched ${r.url()}`); });
    await file.goto(pathToFileURL(opts['export-html']).href);
    await file.waitForFunction(() => document.body.dataset.rendered || document.body.dataset.errors);
    const tab = file.locator(`#tabs button[title="${opts.trace}"]`);
    if (await tab.isVisible()) await tab.click();
    step.name = 'read the HTML export';
    exported = await readTracePage(file, trace.spans);
    exported.errors = await file.evaluate(() => document.body.dataset.errors || null);
    if (exported.errors) throw new Error(`the HTML export reports ${exported.errors} script errors`);
    delete exported.errors;
    // One front-end: the export reads exactly as serve's page, part by part.
    const differ = readingsDiffer(served, exported);
    if (differ) throw new Error(differ);
  }
  if (problems.length) throw new Error(problems.join('\n'));
  process.stdout.write(JSON.stringify({ page: served, export: exported === null ? null : 'same' }) + '\n');
} catch (e) {
  exitCode = 1;
  process.stderr.write(`trace_page.mjs: FAIL at "${step.name}": ${e && e.message ? e.message : e}\n`);
  for (const p of problems) process.stderr.write(`  also: ${p}\n`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
