import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText } from '../lib/expect.js';

after(closeBrowser);

test('the system page shows the mode and each dependency', async () => {
  await withShop(async ({ page, api }) => {
    const health = await api.get('/health');
    await page.goto('/#/system');
    await seeText(page.getByTestId('health-summary'), 'All systems working');
    await seeText(page.getByTestId('health-summary'), 'Single server');
    const deps = page.getByTestId('dependency');
    await deps.first().waitFor();
    assert.equal(await deps.count(), health.dependencies.length);
    await seeText(deps.first(), 'Working');
    await shot(page, 'system');
  });
});

test('when the server goes away a banner says so, and the app recovers by itself', async () => {
  await withShop(async ({ page, shop }) => {
    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile]').first().waitFor();
    await shop.halt();
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').click();
    await page.getByTestId('place-order').click();
    const banner = page.getByTestId('offline-banner');
    await banner.waitFor({ timeout: 15000 });
    await seeText(banner, 'No connection to the shop server');
    await seeText(page.getByTestId('order-error'), 'only be recorded once');
    await shot(page, 'offline');

    await shop.restart();
    await banner.waitFor({ state: 'detached', timeout: 15000 });
    // The cart survived; placing it now works and creates one order.
    await page.getByTestId('place-order').click();
    await page.getByTestId('receipt').waitFor();
    assert.equal((await shop.api.get('/orders')).items.length, 1);
  });
});

test('a server with an access token asks for it once and then sends it on every call', async () => {
  const token = 'counter-secret-123';
  await withShop({ token }, async ({ page }) => {
    const auths = new Set();
    page.on('request', (r) => { if (r.url().includes('/api/v1/')) auths.add(r.headers().authorization || 'none'); });
    await page.goto('/#/sell');
    const field = page.getByLabel('Access token');
    await field.waitFor();
    await shot(page, 'token');
    await field.fill('wrong');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByText('That token was not accepted').waitFor();
    await field.fill(token);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('lemonade.accessToken')), token);
    auths.clear();
    await page.reload();
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').waitFor();
    assert.deepEqual([...auths], [`Bearer ${token}`]);

    // A plain link cannot carry the token, so the CSV is fetched with it and saved.
    await page.goto('/#/reports');
    await page.getByTestId('report-table').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv-link').click()]);
    assert.match(download.suggestedFilename(), /\.csv$/);
    const csv = await readFile(await download.path(), 'utf8');
    assert.match(csv.split(/\r?\n/)[0], /date/i);
  });
});

test('a degraded server is explained in a banner and on the system page', async () => {
  await withShop(async ({ page }) => {
    const degraded = {
      ok: false,
      mode: 'coordinator',
      dependencies: [
        { name: 'orders', ok: true, detail: null, degrades: ['placing orders'] },
        { name: 'stock', ok: false, detail: 'connection refused', degrades: ['placing orders', 'stock changes'] },
      ],
    };
    await page.route('**/api/v1/health', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify(degraded) }));
    await page.goto('/#/system');
    const deps = page.getByTestId('dependency');
    await deps.nth(1).waitFor();
    await seeText(deps.nth(1), 'Down');
    await seeText(deps.nth(1), 'connection refused');
    await seeText(deps.nth(1), 'Stock changes');
    await seeText(page.getByTestId('health-summary'), 'Some parts are not working');
    const banner = page.getByTestId('degraded-banner');
    await seeText(banner, 'Stock unavailable');
    await seeText(banner, 'placing orders, stock changes');
    await shot(page, 'system-degraded');
  });
});
