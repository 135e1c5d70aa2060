#!/usr/bin/env node
// Opens the trace list of one `agentrace serve` in headless Chromium and waits, without ever
// reloading, for traces that other writers put into the store (another serve instance on the
// same PostgreSQL database, an `agentrace run`): the page must follow the store live, through
// /api/events. Fails on anything a person would notice, as drive.mjs does: a console error or
// warning, a script error, a failed request, a dialog, or a row that never shows.
//
//   node tests/ui/live.mjs --base http://127.0.0.1:PORT --expect-trace TRACE_ID \
//     --expect-workflow 'WORKFLOW' [--expect-rows N] [--timeout MS]
//
// Once the list is loaded and the live badge says "live", it prints one JSON line
// {"ready":true,"rows":N} on stdout: the caller writes then. It then waits for a row of
// TRACE_ID, for a second row of WORKFLOW (one was there before, or not: it waits for one more
// than it saw at first), and for N rows in all when --expect-rows is given, and prints a
// one-line JSON summary. The page must be the same document throughout (one navigation).
//
// Environment: CHROMIUM (the browser binary; default /usr/bin/chromium) and NODE_PATH (a
// node_modules holding playwright-core, see package.json), unless `npm ci` ran in tests/ui.
// Exit 0 with the summary; exit 1 with the reason on stderr; exit 2 on bad arguments.
import { launchChromium, watchPage } from './browser.mjs';

const started = Date.now();

const USAGE = 'usage: live.mjs --base URL --expect-trace ID --expect-workflow NAME [--expect-rows N] [--timeout MS]';

function parseArgs(argv) {
  const known = new Set(['base', 'expect-trace', 'expect-workflow', 'expect-rows', 'timeout']);
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) usage(`unexpected argument ${JSON.stringify(a)}`);
    let key = a.slice(2), value;
    const eq = key.indexOf('=');
    if (eq >= 0) { value = key.slice(eq + 1); key = key.slice(0, eq); }
    if (!known.has(key)) usage(`unknown option --${key}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`--${key} needs a value`);
      value = argv[++i];
    }
    out[key] = value;
  }
  for (const k of ['base', 'expect-trace', 'expect-workflow']) if (!out[k]) usage(`--${k} is required`);
  return out;
}

function usage(message) {
  process.stderr.write(`live.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const base = opts.base.replace(/\/+$/, '');
const traceId = opts['expect-trace'];
const workflow = opts['expect-workflow'];
const expectRows = opts['expect-rows'] === undefined ? null : Number(opts['expect-rows']);
const TIMEOUT = Number(opts.timeout || 30000);

class Failure extends Error {}
const fail = (message) => { throw new Failure(message); };
const step = { name: 'start' };
const problems = []; // console errors and warnings, page errors, failed requests, dialogs

const browser = await launchChromium('live.mjs');
let exitCode = 0;
const summary = { ok: true, base, trace: traceId, workflow };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watchPage(page, step, problems);
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
  const check = () => { if (problems.length) fail(problems[0]); };
  const rows = () => page.locator('tr[data-trace-id]').count();
  const ofWorkflow = (name) => page.evaluate((name) => Array.from(document.querySelectorAll('tr[data-trace-id] td.c-workflow'))
    .filter((td) => td.textContent === name).length, name);

  // 1. The list, loaded, with its event stream open.
  step.name = 'open the trace list';
  const response = await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
  if (!response || !response.ok()) fail(`GET ${base}/ answered ${response ? response.status() : 'nothing'}`);
  try {
    await page.waitForFunction(() => {
      const a = document.getElementById('app');
      const live = document.getElementById('live');
      return a && a.dataset.page === 'list' && a.dataset.state === 'ready' && live && live.dataset.live === 'open';
    }, null, { timeout: TIMEOUT });
  } catch (e) {
    fail(`the trace list did not load with live updates on within ${TIMEOUT} ms`);
  }
  check();
  // A mark on the document: a reload would drop it.
  await page.evaluate(() => { window.__liveMark = 'same document'; });
  const before = await rows();
  const workflowBefore = await ofWorkflow(workflow);
  if (await page.locator(`tr[data-trace-id="${traceId}"]`).count()) fail(`trace ${traceId} is listed before it was sent`);
  process.stdout.write(JSON.stringify({ ready: true, rows: before }) + '\n');

  // 2. The others write; the page follows.
  step.name = 'wait for the new rows';
  const waitFor = async (what, fn, arg) => {
    const t0 = Date.now();
    try {
      await page.waitForFunction(fn, arg, { timeout: TIMEOUT });
    } catch (e) {
      fail(`${what} never showed without a reload (${await rows()} rows after ${TIMEOUT} ms)`);
    }
    return Date.now() - t0;
  };
  summary.traceMs = await waitFor(`trace ${traceId}`, (id) => !!document.querySelector(`tr[data-trace-id="${id}"]`), traceId);
  summary.workflowMs = await waitFor(`a new row of ${JSON.stringify(workflow)}`, ([name, n]) => Array.from(document.querySelectorAll('tr[data-trace-id] td.c-workflow'))
    .filter((td) => td.textContent === name).length > n, [workflow, workflowBefore]);
  if (expectRows !== null) {
    await waitFor(`${expectRows} rows`, (n) => document.querySelectorAll('tr[data-trace-id]').length === n, expectRows);
  }
  summary.rows = await rows();
  const mark = await page.evaluate(() => window.__liveMark);
  if (mark !== 'same document') fail('the page was reloaded');
  summary.navigations = navigations;
  if (navigations !== 1) fail(`the page navigated ${navigations} times`);
  check();
} catch (e) {
  exitCode = 1;
  summary.ok = false;
  process.stderr.write(`live.mjs: ${e instanceof Failure ? '' : 'unexpected: '}${e && e.stack && !(e instanceof Failure) ? e.stack : e.message}\n`);
  for (const p of problems) process.stderr.write(`  ${p}\n`);
} finally {
  await browser.close().catch(() => {});
}
summary.ms = Date.now() - started;
if (exitCode === 0) process.stdout.write(JSON.stringify(summary) + '\n');
process.exit(exitCode);
