#!/usr/bin/env node
// Drives the `agentrace serve` UI in headless Chromium the way a person would, and fails on
// anything a person would notice: a console error or warning, a script error, a failed request,
// an alert() that fired, or a page that does not show what the store holds.
//
//   node tests/ui/drive.mjs --base http://127.0.0.1:PORT --expect-trace TRACE_ID \
//     --expect-name 'SPAN NAME' --filter-workflow 'WORKFLOW' \
//     [--expect-escaped '<script>alert(1)</script>'] [--screenshot trace.png] [--no-diff] \
//     [--export-html trace.html]
//
// With --export-html (`agentrace export ... --format html` of the same trace, alone or with the
// rest of its conversation), it also opens that file and checks that it shows every span's
// details, and the conversation's turns, exactly as serve does: one front-end.
//
// Environment: CHROMIUM (the browser binary; default /usr/bin/chromium) and NODE_PATH (a
// node_modules holding playwright-core, see package.json), unless `npm ci` ran in tests/ui.
// Exit 0 with a one-line JSON summary on stdout; exit 1 with the reason on stderr; exit 2 on
// bad arguments.
import { launchChromium, readTracePage, readingsDiffer, watchPage } from './browser.mjs';
import { pathToFileURL } from 'node:url';

const started = Date.now();

const USAGE = 'usage: drive.mjs --base URL --expect-trace ID --expect-name NAME --filter-workflow NAME ' +
  '[--expect-escaped TEXT] [--screenshot PATH] [--timeout MS] [--no-diff] [--export-html PATH]';

function parseArgs(argv) {
  const flags = new Set(['no-diff']);
  const known = new Set(['base', 'expect-trace', 'expect-name', 'filter-workflow', 'expect-escaped', 'screenshot', 'timeout', 'export-html']);
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) usage(`unexpected argument ${JSON.stringify(a)}`);
    let key = a.slice(2), value;
    const eq = key.indexOf('=');
    if (eq >= 0) { value = key.slice(eq + 1); key = key.slice(0, eq); }
    if (flags.has(key)) { out[key] = true; continue; }
    if (!known.has(key)) usage(`unknown option --${key}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`--${key} needs a value`);
      value = argv[++i];
    }
    out[key] = value;
  }
  for (const k of ['base', 'expect-trace', 'expect-name', 'filter-workflow']) if (!out[k]) usage(`--${k} is required`);
  return out;
}

function usage(message) {
  process.stderr.write(`drive.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const base = opts.base.replace(/\/+$/, '');
const traceId = opts['expect-trace'];
const spanName = opts['expect-name'];
const workflow = opts['filter-workflow'];
const escaped = opts['expect-escaped'];
const TIMEOUT = Number(opts.timeout || 15000);

class Failure extends Error {}
const fail = (message) => { throw new Failure(message); };
const step = { name: 'start' };
const problems = []; // console errors and warnings, page errors, failed requests, dialogs

const browser = await launchChromium('drive.mjs');
let exitCode = 0;
const summary = { ok: true, base, trace: traceId };
let page;
let exported = null; // the HTML export beside serve's page, with --export-html
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watchPage(page, step, problems);

  const check = () => { if (problems.length) fail(problems[0]); };
  const appState = () => page.evaluate(() => {
    const a = document.getElementById('app');
    return a ? { page: a.dataset.page, state: a.dataset.state, loaded: a.dataset.loaded, text: a.innerText.slice(0, 300) } : null;
  });
  async function waitPage(name, loaded, what) {
    try {
      await page.waitForFunction(([name, loaded]) => {
        const a = document.getElementById('app');
        if (!a || a.dataset.page !== name) return false;
        if (a.dataset.state === 'error') return true;
        return a.dataset.state === 'ready' && (loaded === null || a.dataset.loaded === loaded);
      }, [name, loaded], { timeout: TIMEOUT });
    } catch (e) {
      fail(`${what} did not finish loading within ${TIMEOUT} ms (app: ${JSON.stringify(await appState().catch(() => null))})`);
    }
    const s = await appState();
    if (s.state === 'error') fail(`${what} shows an error: ${s.text}`);
  }
  const listQuery = (wf) => (wf === null ? '' : new URLSearchParams({ workflow: wf }).toString());

  // 1. The list shows the trace.
  step.name = 'open the trace list';
  const response = await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
  if (!response || !response.ok()) fail(`GET ${base}/ answered ${response ? response.status() : 'nothing'}`);
  await waitPage('list', '', 'the trace list');
  const rowSel = (id) => `tr[data-trace-id="${id}"]`;
  const listed = await page.locator('tr[data-trace-id]').count();
  if (!(await page.locator(rowSel(traceId)).count())) fail(`trace ${traceId} is not in the list (${listed} rows shown)`);
  const workflowsBefore = await page.locator('tr[data-trace-id] td.c-workflow').allTextContents();
  summary.listed = listed;
  check();

  // 1b. The "Started within" presets keep their labels while the page's clock ticks (it once
  // rewrote them into elapsed times a second after the page loaded).
  step.name = 'the time presets keep their labels';
  const presets = () => page.locator('.field.since button').allTextContents();
  const presetsBefore = await presets();
  if (!presetsBefore.includes('Any')) fail(`the "Started within" presets are missing: ${JSON.stringify(presetsBefore)}`);
  await page.waitForTimeout(2200);
  const presetsAfter = await presets();
  if (JSON.stringify(presetsAfter) !== JSON.stringify(presetsBefore)) {
    fail(`the presets changed while the page ticked: ${JSON.stringify(presetsBefore)} → ${JSON.stringify(presetsAfter)}`);
  }
  summary.presets = presetsAfter;
  check();

  // 1c. An offline run (the test runs every trace offline) says so in its cost cell instead of
  // a price.
  step.name = 'offline runs are marked';
  const costCell = ((await page.locator(rowSel(traceId) + ' td.c-cost').textContent()) || '').trim();
  if (costCell !== 'offline') fail(`the offline trace's cost cell reads ${JSON.stringify(costCell)}, not "offline"`);
  summary.cost = costCell;
  check();

  // 2. The workflow filter, through the form: the list narrows and the address says so.
  step.name = 'filter by workflow';
  const urlBefore = page.url();
  await page.fill('input[name="workflow"]', workflow);
  await page.press('input[name="workflow"]', 'Enter');
  await waitPage('list', listQuery(workflow), 'the filtered trace list');
  const urlAfter = page.url();
  if (urlAfter === urlBefore || new URL(urlAfter).searchParams.get('workflow') !== workflow) {
    fail(`the address did not take the workflow filter: ${urlBefore} → ${urlAfter}`);
  }
  const workflowsAfter = await page.locator('tr[data-trace-id] td.c-workflow').allTextContents();
  if (!workflowsAfter.length) fail(`no trace of workflow ${JSON.stringify(workflow)} is listed after filtering`);
  const stray = workflowsAfter.filter((w) => w !== workflow);
  if (stray.length) fail(`the filtered list still shows other workflows: ${JSON.stringify(stray.slice(0, 3))}`);
  if (workflowsBefore.some((w) => w !== workflow) && workflowsAfter.length >= workflowsBefore.length) {
    fail(`the list did not narrow: ${workflowsBefore.length} rows before, ${workflowsAfter.length} after`);
  }
  summary.filtered = workflowsAfter.length;
  check();

  // 3. Two ticked rows open the diff (when the filter left two).
  summary.diff = 'skipped';
  if (!opts['no-diff'] && workflowsAfter.length >= 2) {
    step.name = 'compare two traces';
    const boxes = page.locator('tr[data-trace-id] input[type="checkbox"]');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.click('button:has-text("Compare")');
    await waitPage('diff', null, 'the diff page');
    if (!new URL(page.url()).pathname.startsWith('/diff')) fail(`Compare did not open the diff page: ${page.url()}`);
    const rows = await page.locator('table.diff tbody tr[data-path]').count();
    if (!rows) fail('the diff page shows no span rows');
    summary.diff = `${rows} rows`;
    await page.goBack();
    await waitPage('list', listQuery(workflow), 'the filtered trace list (after going back)');
    check();
  }

  // 4. Open the trace by clicking it (from the unfiltered list if the filter hid it).
  step.name = 'open the trace';
  if (!(await page.locator(rowSel(traceId)).count())) {
    await page.click('button:has-text("Clear filters")');
    await waitPage('list', '', 'the trace list (filters cleared)');
  }
  await page.click(`${rowSel(traceId)} td.c-name a`);
  await waitPage('trace', traceId, 'the trace page');
  if (new URL(page.url()).pathname !== `/traces/${traceId}`) fail(`clicking the trace opened ${page.url()}`);
  const trace = await page.evaluate(async (id) => {
    const r = await fetch('/api/traces/' + encodeURIComponent(id));
    return r.ok ? r.json() : { error: r.status };
  }, traceId);
  if (!trace || !Array.isArray(trace.spans)) fail(`GET /api/traces/${traceId} gave ${JSON.stringify(trace).slice(0, 200)}`);
  const n = trace.spans.length;
  summary.spans = n;
  // ... and its page's facts say so where the cost would be.
  const costFact = ((await page.locator('dl.facts div:has(dt:text-is("cost")) dd').textContent()) || '').trim();
  if (trace.offline !== true || costFact !== 'offline (not priced)') {
    fail(`the offline trace reads offline=${trace.offline}, cost ${JSON.stringify(costFact)}`);
  }

  // 5. The waterfall: one row per span, the expected span among them as text.
  step.name = 'check the waterfall';
  const wf = await page.evaluate(() => {
    const w = document.querySelector('.waterfall');
    return w ? { spans: Number(w.dataset.spans), rows: Number(w.dataset.rows), dom: document.querySelectorAll('.waterfall .row').length,
      ids: Array.from(document.querySelectorAll('.waterfall .row')).map((r) => r.dataset.spanId) } : null;
  });
  if (!wf) fail('the trace page has no waterfall');
  if (wf.spans !== n || wf.rows !== n) fail(`the waterfall has ${wf.rows} rows for ${wf.spans} spans; the trace has ${n}`);
  const known = new Set(trace.spans.map((s) => s.span_id));
  if (wf.ids.some((id) => !known.has(id))) fail('the waterfall shows a span that is not in the trace');
  if (wf.dom < Math.min(n, 20)) fail(`only ${wf.dom} waterfall rows are drawn for ${n} spans`);
  if (!trace.spans.some((s) => s.name === spanName)) fail(`the trace has no span named ${JSON.stringify(spanName)}`);
  const nameRow = page.locator('.waterfall .row').filter({ has: page.locator('.name', { hasText: spanName }) });
  const exactRow = async () => {
    const count = await nameRow.count();
    for (let i = 0; i < count; i++) {
      if ((await nameRow.nth(i).locator('.name').textContent()) === spanName) return nameRow.nth(i);
    }
    return null;
  };
  let row = await exactRow();
  if (!row) {
    // Rows are drawn only where the viewport is: find the span by name.
    await page.fill('.wf-tools input[type="search"]', spanName);
    await page.press('.wf-tools input[type="search"]', 'Enter');
    await page.waitForTimeout(200);
    row = await exactRow();
  }
  if (!row) fail(`no waterfall row shows the span name ${JSON.stringify(spanName)} as text`);
  check();

  // 6. Clicking the span shows its details; the arrow keys move the selection.
  step.name = 'open span details';
  await row.click();
  const detailName = () => page.locator('.detail h2').textContent().catch(() => null);
  await page.waitForFunction((name) => {
    const h2 = document.querySelector('.detail h2');
    return h2 && h2.textContent === name;
  }, spanName).catch(async () => fail(`the span details show ${JSON.stringify(await detailName())}, not ${JSON.stringify(spanName)}`));
  const detailText = await page.locator('.detail').innerText();
  for (const word of ['duration', 'span id', 'EVENTS', 'ATTRIBUTES']) {
    if (!detailText.toUpperCase().includes(word.toUpperCase())) fail(`the span details lack "${word}"`);
  }
  const selectedId = await page.locator('.waterfall .row.selected').getAttribute('data-span-id');
  if (n > 1) {
    step.name = 'move the selection with the keyboard';
    const rowsNow = await page.evaluate(() => Number(document.querySelector('.waterfall').dataset.rows));
    const first = await page.evaluate(() => document.querySelector('.waterfall .row.selected')?.style.top);
    const key = first === '0px' || rowsNow < 2 ? ['ArrowDown', 'ArrowUp'] : ['ArrowUp', 'ArrowDown'];
    await page.keyboard.press(key[0]);
    const moved = await page.locator('.waterfall .row.selected').getAttribute('data-span-id');
    if (rowsNow > 1 && moved === selectedId) fail(`${key[0]} did not move the selection`);
    const movedName = await detailName();
    const movedSpan = trace.spans.find((s) => s.span_id === moved);
    if (!movedSpan || movedName !== movedSpan.name) fail(`after ${key[0]} the details show ${JSON.stringify(movedName)}`);
    await page.keyboard.press(key[1]);
    if ((await page.locator('.waterfall .row.selected').getAttribute('data-span-id')) !== selectedId) fail(`${key[1]} did not move the selection back`);
  }
  check();

  // 7. Escaping: the text shows literally and no script ran.
  if (escaped !== undefined) {
    step.name = 'check escaping';
    let shown = await page.evaluate((t) => document.body.innerText.includes(t), escaped);
    if (!shown) {
      await page.fill('.wf-tools input[type="search"]', escaped);
      await page.press('.wf-tools input[type="search"]', 'Enter');
      await page.waitForTimeout(200);
      shown = await page.evaluate((t) => document.body.innerText.includes(t), escaped);
      await page.fill('.wf-tools input[type="search"]', '');
      await page.press('.wf-tools input[type="search"]', 'Escape');
    }
    if (!shown) fail(`the text ${JSON.stringify(escaped)} does not appear literally on the trace page`);
    const injected = await page.evaluate(() => ({
      // The page's one script element, the entry module; the modules it imports are no elements.
      scripts: Array.from(document.scripts).map((s) => (s.type === 'module' ? '' : s.type + ' ') + (s.src || '(inline)')),
      imgs: document.querySelectorAll('img, iframe, object, embed').length,
      handlers: Array.from(document.querySelectorAll('*')).filter((e) => Array.from(e.attributes).some((a) => a.name.startsWith('on'))).length,
    }));
    if (injected.scripts.length !== 1 || !injected.scripts[0].endsWith('/assets/main.js')) fail(`unexpected scripts on the page: ${JSON.stringify(injected.scripts)}`);
    if (injected.imgs || injected.handlers) fail(`data became markup: ${injected.imgs} img/iframe/object elements, ${injected.handlers} elements with on* attributes`);
    summary.escaped = true;
    check();
  }

  // 8. The screenshot for the README: the trace page with the expected span selected.
  if (opts.screenshot) {
    step.name = 'screenshot';
    await page.evaluate(() => document.activeElement && document.activeElement.blur && document.activeElement.blur());
    await page.mouse.move(0, 0);
    await page.screenshot({ path: opts.screenshot });
    summary.screenshot = opts.screenshot;
  }

  // 9. The HTML export of the same trace: the same front-end, so every span's detail pane (chat
  // view, tool calls, facts, events, attributes) reads the same as on serve's trace page.
  if (opts['export-html']) {
    step.name = 'compare with the HTML export';
    exported = await context.newPage();
    exported.setDefaultTimeout(TIMEOUT);
    exported.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()} in the HTML export: ${m.text()}`);
    });
    exported.on('pageerror', (e) => problems.push(`page error in the HTML export: ${e.message}`));
    exported.on('request', (r) => { if (!r.url().startsWith('file:')) problems.push(`the HTML export fetched ${r.url()}`); });
    await exported.goto(pathToFileURL(opts['export-html']).href);
    await exported.waitForFunction(() => document.body.dataset.rendered || document.body.dataset.errors);
    // A file of several traces has a tab per trace: open this one's.
    const tab = exported.locator(`#tabs button[title="${traceId}"]`);
    if (await tab.isVisible()) await tab.click();
    const rendered = await exported.evaluate(() => ({ rendered: document.body.dataset.rendered, errors: document.body.dataset.errors || null,
      spans: Number(document.querySelector('.waterfall')?.getAttribute('data-spans')), title: document.querySelector('.trace-head h1')?.textContent }));
    if (rendered.errors) fail(`the HTML export reports ${rendered.errors} script errors`);
    if (!rendered.rendered || rendered.spans !== n) fail(`the HTML export shows ${JSON.stringify(rendered)} for ${n} spans`);
    const title = await page.locator('.trace-head h1').textContent();
    if (rendered.title !== title) fail(`the HTML export's title is ${JSON.stringify(rendered.title)}, serve's ${JSON.stringify(title)}`);
    // Every part of the page, and each span's detail pane, selected through the find box.
    const ours = await readTracePage(page, trace.spans), theirs = await readTracePage(exported, trace.spans);
    const differ = readingsDiffer(ours, theirs);
    if (differ) fail(differ);
    const compared = theirs.spans.length, chats = theirs.spans.filter((s) => s.chat.length).length;
    summary.export = { compared, chats };
    check();
  }

  // 10. The conversation, when the trace belongs to one.
  summary.group = trace.group_id || null;
  if (trace.group_id) {
    step.name = 'open the conversation';
    await page.click('.trace-head a[href^="/groups/"]');
    await waitPage('group', trace.group_id, 'the conversation page');
    const turns = await page.locator('article.turn[data-trace-id]').count();
    if (!(await page.locator(`article.turn[data-trace-id="${traceId}"]`).count())) fail(`the conversation ${trace.group_id} does not show trace ${traceId}`);
    const link = page.locator(`article.turn[data-trace-id="${traceId}"] a[href="/traces/${traceId}"]`);
    if (!(await link.count())) fail('the conversation does not link to the trace page');
    summary.conversation = turns;
    // The export of the whole conversation shows the same turns (the bubbles: input, output).
    if (exported && (await exported.locator('#tabs button[data-tab="-1"]').count())) {
      await exported.click('#tabs button[data-tab="-1"]');
      const bubbles = (p) => p.locator('article.turn .bubbles').allInnerTexts();
      const ours = await bubbles(page), theirs = await bubbles(exported);
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) fail(`the conversation's turns differ:\n--- serve\n${ours.join('\n')}\n--- HTML export\n${theirs.join('\n')}`);
      summary.exportConversation = theirs.length;
    }
    check();
  }

  step.name = 'finish';
  await page.waitForTimeout(100);
  check();
  summary.ms = Date.now() - started;
} catch (e) {
  exitCode = 1;
  const message = e instanceof Failure ? e.message : `${e && e.stack ? e.stack : e}`;
  process.stderr.write(`drive.mjs: FAIL at "${step.name}": ${message}\n`);
  for (const p of problems.slice(e instanceof Failure && problems[0] === e.message ? 1 : 0)) process.stderr.write(`  also: ${p}\n`);
  if (page) process.stderr.write(`  page: ${page.url()}\n`);
} finally {
  if (page) page.removeAllListeners('requestfailed');
  if (exported) await exported.close().catch(() => {});
  await browser.close().catch(() => {});
}
if (exitCode === 0) process.stdout.write(JSON.stringify(summary) + '\n');
process.exit(exitCode);
