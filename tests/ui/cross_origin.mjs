#!/usr/bin/env node
// A web page on another origin tries to write into `agentrace serve`, the way any site a user
// visits could: `fetch(…, {mode: 'no-cors'})` with an ArrayBuffer body (no Content-Type, so no
// CORS preflight), with `text/plain`, with a JSON Blob, and `navigator.sendBeacon`. The page is
// served by a tiny HTTP server on another 127.0.0.1 port. Then, as a control, the same browser
// posts the control body from serve's own page (same origin), which must be accepted.
//
//   node tests/ui/cross_origin.mjs --serve http://127.0.0.1:PORT --attack-body JSON --control-body JSON
//
// Environment: CHROMIUM and NODE_PATH as for drive.mjs. Prints one JSON line: what the
// attacker's requests resolved to and the control's status. Exit 1 with the reason on failure.
import { createRequire } from 'node:module';
import http from 'node:http';

const require = createRequire(import.meta.url);

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    process.stderr.write(`cross_origin.mjs: --${name} is required\n`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const serve = arg('serve').replace(/\/+$/, '');
const attackBody = arg('attack-body');
const controlBody = arg('control-body');
const { chromium } = require('playwright-core');

const page = `<!doctype html><meta charset="utf-8"><title>Totally unrelated site</title>
<script>
const SERVE = ${JSON.stringify(serve)};
const BODY = ${JSON.stringify(attackBody)};
async function attack() {
  const bytes = new TextEncoder().encode(BODY);
  const tries = {
    'ingest, ArrayBuffer, no Content-Type': () => fetch(SERVE + '/v1/traces/ingest', { method: 'POST', mode: 'no-cors', body: bytes.buffer }),
    'ingest, text/plain': () => fetch(SERVE + '/v1/traces/ingest', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: BODY }),
    'ingest, JSON Blob': () => fetch(SERVE + '/v1/traces/ingest', { method: 'POST', mode: 'no-cors', body: new Blob([BODY], { type: 'application/json' }) }),
    'otlp, ArrayBuffer': () => fetch(SERVE + '/v1/traces', { method: 'POST', mode: 'no-cors', body: bytes.buffer }),
    'ingest, cors with application/json': () => fetch(SERVE + '/v1/traces/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: BODY }),
  };
  const results = {};
  for (const [name, send] of Object.entries(tries)) {
    try {
      const r = await send();
      results[name] = r.type === 'opaque' ? 'opaque' : String(r.status);
    } catch (e) {
      results[name] = 'failed: ' + e.message;
    }
  }
  results['sendBeacon'] = String(navigator.sendBeacon(SERVE + '/v1/traces/ingest', bytes.buffer));
  return results;
}
</script>`;

const site = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(page);
});
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
const siteUrl = `http://127.0.0.1:${site.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
let code = 0;
try {
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(siteUrl);
  const attacked = await tab.evaluate(() => attack());
  // sendBeacon is fire-and-forget: give it time to reach the server before anyone counts.
  await tab.waitForTimeout(1000);

  await tab.goto(serve + '/');
  const control = await tab.evaluate(async (body) => {
    const r = await fetch('/v1/traces/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    return r.status;
  }, controlBody);
  process.stdout.write(JSON.stringify({ site: siteUrl, attacked, control }) + '\n');
} catch (e) {
  process.stderr.write(`cross_origin.mjs: ${e.stack || e}\n`);
  code = 1;
} finally {
  await browser.close();
  site.close();
}
process.exit(code);
