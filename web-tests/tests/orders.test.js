import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText } from '../lib/expect.js';

after(closeBrowser);

test('cancelling an order, after confirming, puts its ingredients back in stock', async () => {
  await withShop(async ({ page, api }) => {
    const lemonade = await api.product('Lemonade');
    const iced = await api.product('Iced tea');
    const sugarBefore = (await api.ingredient('Sugar')).on_hand;
    const order = await api.order([{ product_id: lemonade.id, quantity: 3 }]);
    await api.order([{ product_id: iced.id, quantity: 1 }]);
    assert.equal((await api.ingredient('Sugar')).on_hand, sugarBefore - 3 * 30 - 20);

    await page.goto('/#/orders');
    const rows = page.getByTestId('order-row');
    await rows.nth(1).waitFor();
    assert.equal(await rows.count(), 2);
    await seeText(rows, '3× Lemonade');
    await shot(page, 'orders');

    // Filter by status.
    await page.getByRole('radio', { name: 'Cancelled' }).click();
    await page.getByText('No cancelled orders today').waitFor();

    await page.getByRole('radio', { name: 'All' }).click();
    await rows.filter({ hasText: '3× Lemonade' }).click();
    await seeText(page.getByTestId('order-status'), 'Confirmed');
    await shot(page, 'order-detail');
    await page.getByTestId('cancel-order').click();
    const dialog = page.getByRole('dialog');
    await seeText(dialog, 'go back into stock');
    await shot(page, 'order-cancel-confirm');
    await dialog.getByRole('button', { name: 'Cancel order' }).click();
    await seeText(page.getByTestId('order-status'), 'Cancelled');
    assert.equal(await page.getByTestId('cancel-order').count(), 0, 'a cancelled order cannot be cancelled again');
    assert.equal((await api.get(`/orders/${order.id}`)).status, 'cancelled');

    await page.goto('/#/stock');
    const sugar = page.locator('[data-testid=ingredient-row][data-name="Sugar"]');
    await seeText(sugar.getByTestId('on-hand'), `${(sugarBefore - 20).toLocaleString('en-US')} g`);
    assert.equal((await api.ingredient('Sugar')).on_hand, sugarBefore - 20);

    await page.goto('/#/orders?status=cancelled');
    await page.getByTestId('order-row').first().waitFor();
    assert.equal(await page.getByTestId('order-row').count(), 1);
  });
});
