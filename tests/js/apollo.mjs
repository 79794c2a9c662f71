// A single-page app on another origin, in headless Chromium: Apollo Client 4 (apollo/page.mjs,
// bundled here by esbuild) runs a mutation, a query and a subscription against the API. Every
// request to anything but the page's server and the API is refused. Prints the results as JSON
// (tests/test_browser_clients.py).
// usage: node apollo.mjs http://127.0.0.1:API_PORT/graphql PAGE_PORT /usr/bin/chromium EMAIL PASSWORD
import http from 'node:http';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const [api, pagePort, executablePath, email, password] = process.argv.slice(2);
const bundle = await build({
  entryPoints: [new URL('./apollo/page.mjs', import.meta.url).pathname],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  write: false,
  logLevel: 'silent',
});
const script = bundle.outputFiles[0].text;
const html = '<!doctype html><html><head><script src="/app.js"></script></head><body>SPA</body></html>';
const server = http.createServer((request, response) => {
  if (request.url === '/app.js') {
    response.writeHead(200, { 'content-type': 'text/javascript' });
    response.end(script);
  } else {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(html);
  }
});
await new Promise((resolve) => server.listen(Number(pagePort), 'localhost', resolve));
const page_origin = `http://localhost:${pagePort}`;
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  const outside = [];
  const apiOrigin = new URL(api).origin;
  await page.route('**/*', (route) => {
    const requested = route.request().url();
    if (requested.startsWith(page_origin) || requested.startsWith(apiOrigin)) return route.continue();
    outside.push(requested);
    return route.abort();
  });
  await page.goto(page_origin, { waitUntil: 'load' });
  const result = await page.evaluate(
    ([url, e, p]) => window.scenario(url, e, p),
    [api, email, password],
  );
  console.log(JSON.stringify({ outside, pageOrigin: page_origin, ...result }));
} finally {
  await browser.close();
  server.close();
}
