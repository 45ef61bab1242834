import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText } from '../lib/expect.js';

after(closeBrowser);

test('sales report by day and by product, with a CSV download', async () => {
  await withShop(async ({ page, api }) => {
    const lemonade = await api.product('Lemonade');
    const pink = await api.product('Pink lemonade');
    await api.order([{ product_id: lemonade.id, quantity: 2 }]);
    await api.order([{ product_id: pink.id, quantity: 1 }, { product_id: lemonade.id, quantity: 1 }]);
    const cancelled = await api.order([{ product_id: pink.id, quantity: 5 }]);
    await api.post(`/orders/${cancelled.id}/cancel`);

    await page.goto('/#/reports');
    const table = page.getByTestId('report-table');
    await table.waitFor();
    // 3 lemonades at 3.50 and 1 pink lemonade at 4.00; the cancelled order does not count.
    await seeText(table.locator('tfoot'), '$14.50');
    await page.getByTestId('chart').waitFor();
    await shot(page, 'reports-by-day');

    await page.getByRole('radio', { name: 'By product' }).click();
    await seeText(table.locator('tbody tr').first(), 'Lemonade');
    await seeText(table.locator('tbody tr').first(), '$10.50');
    await shot(page, 'reports-by-product');

    const link = page.getByTestId('csv-link');
    assert.match(await link.getAttribute('href'), /format=csv/);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const csv = await readFile(await download.path(), 'utf8');
    const lines = csv.trim().split(/\r?\n/);
    assert.ok(lines.length >= 3, `a header and a row per product:\n${csv}`);
    assert.match(lines[0], /product/i);
    assert.ok(lines.some((l) => l.includes('Pink lemonade')), csv);
  });
});
