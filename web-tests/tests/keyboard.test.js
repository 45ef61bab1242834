import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { withShop, closeBrowser } from '../lib/fixture.js';

after(closeBrowser);

async function tabTo(page, testId, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((id) => document.activeElement?.dataset?.testid === id, testId)) return;
  }
  assert.fail(`could not reach ${testId} with Tab`);
}

test('a sale can be made with the keyboard alone', async () => {
  await withShop(async ({ page, api }) => {
    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile]').first().waitFor();
    await tabTo(page, 'product-tile');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.name), 'Lemonade');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Space');
    await tabTo(page, 'place-order');
    await page.keyboard.press('Enter');
    await page.getByTestId('receipt').waitFor();
    // "New sale" has the focus, so Enter starts the next customer.
    await page.keyboard.press('Enter');
    await page.getByTestId('receipt').waitFor({ state: 'detached' });
    const orders = await api.get('/orders');
    assert.equal(orders.items.length, 1);
    assert.equal(orders.items[0].lines[0].quantity, 2);

    // Escape closes a dialog without doing anything.
    await page.getByRole('button', { name: 'Add customer (optional)' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
  });
});
