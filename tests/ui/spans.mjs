// Reads what the trace page shows of some spans, for tests that check how a span's state reads
// to a person (a span whose run died: "did not finish"; a span that failed because of another:
// a link to it): each span's waterfall row and its detail pane once the row is clicked.
//
// Usage: node spans.mjs --base URL --trace ID --span ID [--span ID]...
// Prints one JSON line: {"spans": {ID: {"row": text, "detail": text}}}; exits 1 with the reason
// when the page does not load, a span has no row, or the page logs an error.
import { launchChromium, watchPage } from './browser.mjs';

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined; };
const base = opt('base');
const trace = opt('trace');
const spans = args.flatMap((a, i) => (a === '--span' ? [args[i + 1]] : []));
if (!base || !trace || !spans.length) {
  process.stderr.write('usage: node spans.mjs --base URL --trace ID --span ID [--span ID]...\n');
  process.exit(2);
}

const step = { name: 'start' };
const problems = [];
const browser = await launchChromium('spans.mjs');
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15000);
  watchPage(page, step, problems);
  step.name = 'open the trace';
  await page.goto(`${base}/traces/${encodeURIComponent(trace)}`, { waitUntil: 'domcontentloaded' });
  const out = {};
  for (const id of spans) {
    step.name = `read span ${id}`;
    const row = page.locator(`.row[data-span-id="${id}"]`);
    await row.waitFor();
    const text = await row.innerText();
    await row.click();
    const detail = page.locator('aside.detail');
    await page.waitForFunction((id) => {
      const d = document.querySelector('aside.detail');
      return !!d && d.innerText.includes(id);
    }, id);
    out[id] = { row: text, detail: await detail.innerText() };
  }
  if (problems.length) throw new Error(problems[0]);
  process.stdout.write(JSON.stringify({ spans: out }) + '\n');
} catch (e) {
  process.stderr.write(`spans.mjs: during "${step.name}": ${e.message}\n`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
