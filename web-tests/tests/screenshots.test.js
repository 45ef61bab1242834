// Every page of a busy demo shop at tablet size (and the till on a phone), for a person to
// look at: target/screenshots/*.png.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { withShop, closeBrowser, sharedBrowser } from '../lib/fixture.js';
import { shot, tabletPage } from '../lib/browser.js';

after(closeBrowser);

test('every page renders with data, at tablet and phone size', async () => {
  await withShop(async ({ page, api, shop }) => {
    const products = await api.all('/products');
    const by = Object.fromEntries(products.map((p) => [p.name, p]));
    const ada = await api.post('/customers', { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' });
    await api.post('/customers', { name: 'Grace Hopper', phone: '+1 555 0100' });
    await api.post('/customers', { name: 'Alan Turing', email: 'alan@example.com' });
    await api.order([{ product_id: by.Lemonade.id, quantity: 2 }, { product_id: by['Iced tea'].id, quantity: 1 }], ada.id);
    await api.order([{ product_id: by['Pink lemonade'].id, quantity: 3 }]);
    const o = await api.order([{ product_id: by['Iced tea'].id, quantity: 2 }]);
    await api.post(`/orders/${o.id}/cancel`);
    const syrup = await api.ingredient('Raspberry syrup');
    await api.post(`/ingredients/${syrup.id}/waste`, { quantity: 1700, note: 'Bottle dropped' });
    const ice = await api.ingredient('Ice');
    await api.post(`/ingredients/${ice.id}/restock`, { quantity: 5000, note: 'Morning delivery' });

    const pages = [
      ['sell', '/#/sell', '[data-testid=product-tile]'],
      ['orders', '/#/orders', '[data-testid=order-row]'],
      ['stock', '/#/stock', '[data-testid=ingredient-row]'],
      ['stock-ingredient', `/#/stock/${ice.id}`, '[data-testid=ledger]'],
      ['products', '/#/products', '[data-testid=product-card]'],
      ['customers', '/#/customers', '[data-testid=customer-list]'],
      ['customer', `/#/customers/${ada.id}`, 'table'],
      ['reports', '/#/reports', '[data-testid=chart]'],
      ['system', '/#/system', '[data-testid=dependency]'],
    ];
    for (const [name, url, ready] of pages) {
      await page.goto(url);
      await page.locator(ready).first().waitFor();
      await page.waitForTimeout(150);
      await shot(page, `page-${name}`);
    }

    // The till with a cart on it.
    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').click();
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').click();
    await page.locator('[data-testid=product-tile][data-name="Iced tea"]').click();
    await shot(page, 'page-sell-cart');

    await page.goto('/#/products');
    await page.getByRole('button', { name: 'Edit Lemonade' }).click();
    await page.getByRole('dialog').waitFor();
    await shot(page, 'page-product-edit');

    const b = await sharedBrowser();
    const phone = await tabletPage(b, shop.url, { width: 390, height: 844 });
    try {
      for (const [name, url, ready] of [['sell', '/#/sell', '[data-testid=product-tile]'], ['stock', '/#/stock', '[data-testid=ingredient-row]'], ['reports', '/#/reports', '[data-testid=chart]']]) {
        await phone.page.goto(url);
        await phone.page.locator(ready).first().waitFor();
        await shot(phone.page, `phone-${name}`);
      }
      assert.equal(phone.page.errors.length, 0);
    } finally {
      await phone.context.close();
    }
  });
});
