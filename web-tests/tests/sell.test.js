import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText as assertText } from '../lib/expect.js';

after(closeBrowser);

const tile = (page, name) => page.locator(`[data-testid=product-tile][data-name="${name}"]`);
const placeButton = (page) => page.getByTestId('place-order');

test('selling two lemonades lowers the stock and what can still be made', async () => {
  await withShop(async ({ page, api }) => {
    const before = await api.product('Lemonade');
    const lemons = await api.ingredient('Lemons');
    await page.goto('/#/sell');
    await tile(page, 'Lemonade').getByTestId('can-make').filter({ hasText: `Can make ${before.can_make}` }).waitFor();

    await tile(page, 'Lemonade').click();
    await tile(page, 'Lemonade').click();
    await assertText(page.getByTestId('cart-total'), '$7.00');
    await shot(page, 'sell-cart');
    await placeButton(page).click();

    const receipt = page.getByTestId('receipt');
    await receipt.waitFor();
    assert.equal(await receipt.getAttribute('data-status'), 'confirmed');
    await assertText(page.getByTestId('receipt-total'), '$7.00');
    await assertText(page.getByTestId('receipt-title'), 'Order placed');
    await shot(page, 'sell-receipt');
    await page.getByTestId('new-sale').click();

    const afterSale = await api.product('Lemonade');
    assert.equal(afterSale.can_make, before.can_make - 2);
    await tile(page, 'Lemonade').getByTestId('can-make').filter({ hasText: `Can make ${afterSale.can_make}` }).waitFor();

    await page.goto('/#/stock');
    const row = page.locator('[data-testid=ingredient-row][data-name="Lemons"]');
    await assertText(row.getByTestId('on-hand'), `${lemons.on_hand - 2} pcs`);
    const orders = await api.get('/orders');
    assert.equal(orders.items.length, 1);
    assert.deepEqual(orders.items[0].lines.map((l) => [l.name, l.quantity]), [['Lemonade', 2]]);
  });
});

test('a double tap on Place order creates one order', async () => {
  await withShop(async ({ page, api }) => {
    await page.goto('/#/sell');
    await tile(page, 'Iced tea').click();
    await placeButton(page).dblclick();
    await page.getByTestId('receipt').waitFor();
    await page.waitForTimeout(300);
    const orders = await api.get('/orders');
    assert.equal(orders.items.length, 1, 'exactly one order');
  });
});

test('a retry after a lost answer reuses the idempotency key and creates one order', async () => {
  await withShop(async ({ page, api }) => {
    const keys = [];
    let first = true;
    await page.route('**/api/v1/orders', async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      keys.push(req.headers()['idempotency-key']);
      if (first) {
        first = false;
        // The order reaches the server, but the answer is lost on the way back.
        await route.fetch();
        return route.abort('connectionreset');
      }
      return route.continue();
    });
    await page.goto('/#/sell');
    await tile(page, 'Pink lemonade').click();
    await placeButton(page).click();
    await page.getByTestId('receipt').waitFor();
    assert.ok(keys.length >= 2, `the app retried (${keys.length} attempts)`);
    assert.ok(keys[0] && /^[0-9a-f-]{36}$/.test(keys[0]), 'a UUID key was sent');
    assert.ok(keys.every((k) => k === keys[0]), 'every attempt used the same key');
    const orders = await api.get('/orders');
    assert.equal(orders.items.length, 1, 'exactly one order');

    // The next cart is a new sale with a new key.
    await page.getByTestId('new-sale').click();
    await tile(page, 'Pink lemonade').click();
    await placeButton(page).click();
    await page.getByTestId('receipt').waitFor();
    assert.notEqual(keys.at(-1), keys[0]);
    assert.equal((await api.get('/orders')).items.length, 2);
  });
});

test('an order that runs short says which ingredient, and a changed cart gets a new key', async () => {
  await withShop(async ({ page, api }) => {
    const mint = await api.post('/ingredients', { name: 'Fresh mint', unit: 'g', on_hand: 10, reorder_level: 2 });
    await api.post('/products', { name: 'Mint tea', price: 280, recipe: [{ ingredient_id: mint.id, quantity: 4 }] });
    const keys = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/v1/orders')) keys.push(r.headers()['idempotency-key']); });

    await page.goto('/#/sell');
    await tile(page, 'Mint tea').getByTestId('can-make').filter({ hasText: 'Can make 2' }).waitFor();
    for (let i = 0; i < 3; i++) await tile(page, 'Mint tea').click();
    await placeButton(page).click();
    const shortage = page.getByTestId('shortage');
    await shortage.waitFor();
    const text = await shortage.innerText();
    assert.match(text, /Fresh mint/);
    assert.match(text, /needs 12 g/);
    assert.match(text, /only 10 g left/);
    await shot(page, 'sell-shortage');
    assert.equal((await api.get('/orders')).items.length, 0);

    // Take one off and try again: a definitive rejection means the changed cart is a new attempt.
    await page.getByRole('button', { name: 'One less Mint tea' }).click();
    await placeButton(page).click();
    await page.getByTestId('receipt').waitFor();
    assert.equal(keys.length, 2);
    assert.notEqual(keys[0], keys[1]);
    const fresh = await api.ingredient('Fresh mint');
    assert.equal(fresh.on_hand, 2);
  });
});

test('a pending order is shown as pending until it is confirmed', async () => {
  await withShop(async ({ page }) => {
    // The monolith confirms at once; the distributed mode answers 202 with a pending order.
    // Play that answer here, and let the real order show up on the following polls.
    let polls = 0;
    await page.route('**/api/v1/orders', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const res = await route.fetch();
      const order = await res.json();
      return route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify({ ...order, status: 'pending', points: 0 }) });
    });
    await page.route('**/api/v1/orders/*', async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      polls++;
      if (polls < 3) {
        const res = await route.fetch();
        const order = await res.json();
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...order, status: 'pending' }) });
      }
      return route.continue();
    });
    await page.goto('/#/sell');
    await tile(page, 'Lemonade').click();
    await placeButton(page).click();
    const receipt = page.getByTestId('receipt');
    await receipt.waitFor();
    assert.equal(await receipt.getAttribute('data-status'), 'pending');
    await assertText(page.getByTestId('receipt-title'), 'Waiting for confirmation');
    await shot(page, 'sell-pending');
    await page.locator('[data-testid=receipt][data-status=confirmed]').waitFor({ timeout: 10000 });
    assert.ok(polls >= 3, `polled ${polls} times`);
  });
});
