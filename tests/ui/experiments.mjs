#!/usr/bin/env node
// Drives serve's Experiments pages in headless Chromium as a person would, and fails on a
// console error or warning, a script error, a failed request, or a page that does not show what
// the store holds: the list shows both experiments (from the header's link); one experiment's
// "Failing only" shows fewer cases, a click on a score column sorts by it, a case opens its
// trace page; picking a baseline in the list leads to the comparison with a verdict per scorer.
//
//   node tests/ui/experiments.mjs --base http://127.0.0.1:PORT --a BASELINE_NAME --b NAME \
//     --scorer SCORER [--screenshot PATH] [--report base.html]
//
// With --report (`agentrace eval -o` of the baseline), it also opens that file: it shows the
// experiment's cases, "failing only" shows fewer, and a case opens its trace, all offline.
//
// Environment: CHROMIUM and NODE_PATH as for drive.mjs. Exit 0 with a one-line JSON summary on
// stdout; exit 1 with the reason on stderr; exit 2 on bad arguments.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i];
  if (!k.startsWith('--') || i + 1 >= argv.length) {
    process.stderr.write(`experiments.mjs: bad argument ${JSON.stringify(k)}\n`);
    process.exit(2);
  }
  args[k.slice(2)] = argv[i + 1];
}
for (const k of ['base', 'a', 'b', 'scorer']) {
  if (!args[k]) { process.stderr.write(`experiments.mjs: --${k} is required\n`); process.exit(2); }
}
const base = args.base.replace(/\/+$/, '');
const TIMEOUT = 15000;

const { chromium } = require('playwright-core');
class Failure extends Error {}
const fail = (m) => { throw new Failure(m); };
const step = { name: 'start' };
const problems = [];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const summary = { ok: true };
let exitCode = 0;
let page;
try {
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()} during "${step.name}": ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error during "${step.name}": ${e.message}`));
  page.on('requestfailed', (r) => {
    const err = r.failure() ? r.failure().errorText : 'failed';
    if (err.includes('ERR_ABORTED') && new URL(r.url()).pathname === '/api/events') return;
    problems.push(`request failed during "${step.name}": ${r.url()}: ${err}`);
  });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} during "${step.name}": ${r.url()}`); });
  const check = () => { if (problems.length) fail(problems[0]); };
  async function waitPage(name, what) {
    try {
      await page.waitForFunction((name) => {
        const a = document.getElementById('app');
        return !!a && a.dataset.page === name && (a.dataset.state === 'ready' || a.dataset.state === 'error');
      }, name, { timeout: TIMEOUT });
    } catch (e) {
      fail(`${what} did not load: ${await page.evaluate(() => document.getElementById('app')?.innerText.slice(0, 300))}`);
    }
    const state = await page.evaluate(() => document.getElementById('app').dataset.state);
    if (state === 'error') fail(`${what} shows an error: ${await page.evaluate(() => document.getElementById('app').innerText.slice(0, 300))}`);
    check();
  }
  const count = () => page.evaluate(() => Number(document.getElementById('app').dataset.count));

  step.name = 'open the experiments from the header';
  await page.goto(base + '/');
  await page.click('#nav-experiments');
  await waitPage('experiments', 'the experiments list');
  if (new URL(page.url()).pathname !== '/experiments') fail(`the header link led to ${page.url()}`);
  await page.waitForFunction(() => document.getElementById('app').dataset.rates === 'loaded');
  const names = await page.locator('table.experiments-table tbody .t-name').allInnerTexts();
  for (const n of [args.a, args.b]) if (!names.includes(n)) fail(`the list does not show ${n}: ${JSON.stringify(names)}`);
  const rates = await page.locator('table.experiments-table tbody td.c-rate').allInnerTexts();
  if (!rates.every((r) => /%$/.test(r))) fail(`pass rates missing: ${JSON.stringify(rates)}`);
  summary.listed = names;

  step.name = 'open one experiment';
  await page.click(`table.experiments-table tbody .t-name:text-is("${args.a}")`);
  await waitPage('experiment', 'the experiment page');
  const all = await count();
  const rows = await page.locator('table.cases tbody tr').count();
  if (rows !== all || rows === 0) fail(`the experiment shows ${rows} case rows (count ${all})`);
  if (!(await page.locator(`table.scorers tr[data-scorer="${args.scorer}"]`).count())) fail(`no scorer row for ${args.scorer}`);

  step.name = 'failing only';
  await page.check('input[name="failing"]');
  const failing = await page.locator('table.cases tbody tr').count();
  if (!(failing > 0 && failing < all)) fail(`"failing only" shows ${failing} of ${all} rows`);
  if (await page.locator('table.cases tbody tr[data-passed="true"]').count()) fail('"failing only" still shows a passing case');
  summary.cases = all;
  summary.failing = failing;
  await page.uncheck('input[name="failing"]');
  if ((await page.locator('table.cases tbody tr').count()) !== all) fail('unticking "failing only" does not bring every case back');

  step.name = 'sort by a score';
  const scoreValues = () => page.locator(`table.cases tbody td[data-scorer="${args.scorer}"]`).allInnerTexts();
  await page.click(`table.cases th[data-sort="score:${args.scorer}"] button`);
  const up = (await scoreValues()).map(parseFloat);
  await page.click(`table.cases th[data-sort="score:${args.scorer}"] button`);
  const down = (await scoreValues()).map(parseFloat);
  const sorted = (xs, d) => xs.every((x, i) => i === 0 || d * (x - xs[i - 1]) >= 0);
  if (!sorted(up, 1) || !sorted(down, -1) || up[0] === down[0]) fail(`sorting by ${args.scorer}: ${JSON.stringify(up)} then ${JSON.stringify(down)}`);
  if ((await page.getAttribute(`table.cases th[data-sort="score:${args.scorer}"]`, 'aria-sort')) !== 'descending') fail('the header does not say how the table is sorted');
  summary.sorted = down;

  step.name = 'open a case\'s trace';
  const first = page.locator('table.cases tbody tr').first();
  const href = await first.locator('a.t-name').getAttribute('href');
  await first.locator('a.t-name').click();
  await waitPage('trace', 'the case\'s trace page');
  if (new URL(page.url()).pathname !== href || !href.startsWith('/traces/')) fail(`the case led to ${page.url()}, not ${href}`);
  summary.trace = href;

  step.name = 'pick a baseline and compare';
  await page.goBack();
  await waitPage('experiment', 'the experiment page, again');
  await page.click('#nav-experiments');
  await waitPage('experiments', 'the experiments list, again');
  const rowOf = (name) => page.locator('table.experiments-table tbody tr', { has: page.locator(`.t-name:text-is("${name}")`) });
  await rowOf(args.a).locator('button[data-pick-baseline]').click();
  await rowOf(args.b).locator('a[data-compare]').click();
  await waitPage('compare', 'the comparison');
  const verdicts = await page.locator('table.cmp-scorers tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.dataset.scorer, tr.querySelector('td.verdict').textContent]));
  if (!verdicts.length || verdicts.some(([, v]) => !v || !v.trim())) fail(`a scorer without a verdict: ${JSON.stringify(verdicts)}`);
  if (!verdicts.some(([s]) => s === args.scorer)) fail(`no comparison for ${args.scorer}: ${JSON.stringify(verdicts)}`);
  const sides = await page.locator('.cmp-side .t-name').allInnerTexts();
  if (JSON.stringify(sides) !== JSON.stringify([args.a, args.b])) fail(`the sides are ${JSON.stringify(sides)}`);
  const changed = await page.locator('table.cmp-changes tbody tr').count();
  if (!changed) fail('no changed case listed');
  summary.verdicts = Object.fromEntries(verdicts);
  summary.changed = changed;
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
  await page.waitForTimeout(100);
  check();

  if (args.report) {
    step.name = 'open the HTML report';
    // Nothing but the file itself may load.
    page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) problems.push(`the report fetched ${r.url()}`); });
    await page.goto(pathToFileURL(args.report).href);
    await page.waitForFunction(() => document.body.dataset.rendered || document.body.dataset.errors);
    const body = await page.evaluate(() => ({ ...document.body.dataset }));
    if (body.errors) fail(`the report has script errors: ${await page.locator('#errors').innerText()}`);
    const all = await page.locator('table.cases tbody tr').count();
    await page.check('input[name="failing"]');
    const failing = await page.locator('table.cases tbody tr').count();
    if (!(failing > 0 && failing < all)) fail(`"failing only" in the report shows ${failing} of ${all}`);
    const button = page.locator('table.cases tbody tr .t-name').first();
    const traceId = await button.getAttribute('data-trace-id');
    await button.click();
    await page.waitForFunction((id) => document.getElementById('app').dataset.page === 'trace' && document.getElementById('app').dataset.loaded === id, traceId);
    const spans = await page.locator('[data-span-id]').count();
    if (!spans) fail('the report\'s trace shows no span');
    await page.click('#tabs button[data-tab="experiment"]');
    await page.waitForFunction(() => document.getElementById('app').dataset.page === 'experiment');
    check();
    summary.report = { rendered: body.rendered, traces: body.traces, cases: all, failing, trace: traceId, spans };
  }
} catch (e) {
  exitCode = 1;
  process.stderr.write(`experiments.mjs: FAIL at "${step.name}": ${e instanceof Failure ? e.message : (e && e.stack) || e}\n`);
  for (const p of problems) process.stderr.write(`  also: ${p}\n`);
  if (page) process.stderr.write(`  page: ${page.url()}\n`);
} finally {
  await browser.close().catch(() => {});
}
if (exitCode === 0) process.stdout.write(JSON.stringify(summary) + '\n');
process.exit(exitCode);
