// The server that scripts/web-test.sh started (LEMONADE_URL) serves the app at / and the app
// loads the demo shop from the API. Without LEMONADE_URL a fresh server is started.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, tabletPage } from '../lib/browser.js';
import { startShop } from '../lib/server.js';

let browser;
let own;
after(async () => { if (browser) await browser.close(); if (own) await own.stop(); });

test('the app is served at / and shows the demo shop', async () => {
  let url = process.env.LEMONADE_URL;
  if (!url) { own = await startShop(); url = own.url; }
  const index = await fetch(`${url}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /text\/html/);
  browser = await launch();
  const { page, context } = await tabletPage(browser, url);
  await page.goto('/');
  await page.locator('[data-testid=product-tile][data-name="Lemonade"]').waitFor();
  assert.equal(await page.title(), 'Lemonade');
  for (const link of ['Orders', 'Stock', 'Products', 'Customers', 'Reports', 'System']) {
    await page.getByRole('link', { name: link, exact: true }).click();
    await page.locator('h1').first().waitFor();
  }
  assert.deepEqual(page.errors, []);
  await context.close();
});
