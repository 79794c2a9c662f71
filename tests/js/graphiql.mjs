// GraphiQL in headless Chromium with every request outside the server refused: it must load and
// run a query from the server alone. Prints {outside, result} as JSON (tests/test_graphiql.py).
// usage: node graphiql.mjs http://127.0.0.1:PORT/graphql /usr/bin/chromium
import { chromium } from 'playwright-core';

const [url, executablePath] = process.argv.slice(2);
const origin = new URL(url).origin;
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  const outside = [];
  await page.route('**/*', (route) => {
    const requested = route.request().url();
    if (requested.startsWith(origin)) return route.continue();
    outside.push(requested);
    return route.abort();
  });
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${url}?q=${encodeURIComponent('{ __typename }')}`, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });
  await page.click('.graphiql-execute-button');
  const handle = await page.waitForFunction(
    () => {
      const pane = document.querySelector('.graphiql-response');
      return pane && pane.textContent.includes('__typename') ? pane.textContent : null;
    },
    null,
    { timeout: 30000 },
  );
  console.log(JSON.stringify({ outside, errors, result: await handle.jsonValue() }));
} finally {
  await browser.close();
}
