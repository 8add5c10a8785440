// node run.mjs GATEHOUSE_URL...: bundles page.js with esbuild, serves it on
// a port of its own on 127.0.0.1 (so the page's origin is not Gatehouse's
// and every call is a cross-origin request, preflight included), opens it
// in headless Chromium (/usr/bin/chromium, or $CHROMIUM) driven by
// playwright-core with a fresh profile, waits for the page's
// window.results (its calls to each URL) and prints them as JSON on
// standard output, with the browser's requests as DevTools saw them. The
// browser's console and page errors go to standard error.
// test/e2e/grpcweb_browser_test.go runs it and checks the results.
import {createServer} from 'node:http';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join, dirname} from 'node:path';
import {fileURLToPath} from 'node:url';
import {build} from 'esbuild';
import {chromium} from 'playwright-core';

const gatehouses = process.argv.slice(2);
if (gatehouses.length === 0) {
  console.error('usage: node run.mjs GATEHOUSE_URL...');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));

const bundle = await build({
  entryPoints: [join(here, 'page.js')],
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  logLevel: 'warning',
});
const script = bundle.outputFiles[0].contents;
const html = '<!DOCTYPE html><meta charset="utf-8"><title>gRPC-Web</title><link rel="icon" href="data:,"><script src="/page.js"></script>';

const server = createServer((req, res) => {
  if (req.url === '/page.js') {
    res.writeHead(200, {'Content-Type': 'text/javascript'});
    res.end(script);
  } else if (req.url.startsWith('/?')) {
    res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'});
    res.end(html);
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// A fresh profile, and nothing that reaches out on its own.
const profile = await mkdtemp(join(tmpdir(), 'gatehouse-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Gatehouse's test certificate is issued by the test's own CA.
  ignoreHTTPSErrors: true,
  chromiumSandbox: false,
  args: [
    '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
});
let code = 0;
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', (m) => console.error(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page error: ${e.stack || e}`));
  page.on('requestfailed', (r) => console.error(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  // Every exchange the browser had with the network, CORS preflights
  // included, with the protocol it used (DevTools' Network domain).
  const exchanges = new Map();
  const cdp = await browser.newCDPSession(page);
  cdp.on('Network.requestWillBeSent', (e) =>
    exchanges.set(e.requestId, {method: e.request.method, url: e.request.url}));
  cdp.on('Network.responseReceived', (e) => {
    const x = exchanges.get(e.requestId) || {url: e.response.url};
    Object.assign(x, {status: e.response.status, protocol: e.response.protocol});
    exchanges.set(e.requestId, x);
  });
  await cdp.send('Network.enable');
  const query = gatehouses.map((g) => 'gatehouse=' + encodeURIComponent(g)).join('&');
  await page.goto(`${origin}/?${query}`);
  await page.waitForFunction(() => window.results !== undefined, null, {timeout: 90000});
  const results = await page.evaluate(() => window.results);
  process.stdout.write(JSON.stringify({origin, results, exchanges: [...exchanges.values()]}) + '\n');
} catch (e) {
  console.error(e.stack || String(e));
  code = 1;
} finally {
  await browser.close();
  server.close();
  await rm(profile, {recursive: true, force: true});
}
process.exit(code);
