import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText } from '../lib/expect.js';

after(closeBrowser);

test('a new customer attached to a sale earns points, and can be exported and anonymised', async () => {
  await withShop(async ({ page, api }) => {
    await page.goto('/#/customers');
    await page.getByText('No customers yet').waitFor();
    await page.getByRole('button', { name: 'New customer' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Ada Lovelace');
    await dialog.getByLabel('Phone (optional)').fill('+44 20 7946 0000');
    await dialog.getByLabel('Email (optional)').fill('ada@example.com');
    await dialog.getByRole('button', { name: 'Add customer' }).click();
    await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
    await seeText(page.getByTestId('customer-points'), '0');

    // Sell to her: 2 lemonades and a pink lemonade = 11.00.
    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').click();
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').click();
    await page.locator('[data-testid=product-tile][data-name="Pink lemonade"]').click();
    await page.getByRole('button', { name: 'Add customer (optional)' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Search by name, phone or email').fill('Ada');
    await shot(page, 'sell-customer-search');
    await dialog.getByRole('button', { name: /Ada Lovelace/ }).click();
    await seeText(page.locator('.chip-customer'), 'Ada Lovelace');
    await page.getByTestId('place-order').click();
    await page.getByTestId('receipt').waitFor();
    const order = (await api.get('/orders')).items[0];
    assert.equal(order.total, 1100);
    assert.ok(order.points > 0, 'the order earned points');
    await seeText(page.getByTestId('receipt-points'), `${order.points} points earned`);
    await seeText(page.getByTestId('receipt-points'), `now has ${order.points} points`);
    await shot(page, 'sell-receipt-customer');
    await page.getByTestId('new-sale').click();

    await page.goto('/#/customers');
    await page.getByRole('link', { name: /Ada Lovelace/ }).click();
    await seeText(page.getByTestId('customer-points'), String(order.points));
    await seeText(page.locator('table'), '2× Lemonade, 1× Pink lemonade');
    await shot(page, 'customer-detail');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    assert.match(download.suggestedFilename(), /ada-lovelace.*\.json$/);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.equal(exported.customer.name, 'Ada Lovelace');
    assert.equal(exported.orders.length, 1);

    await page.getByRole('button', { name: 'Anonymise' }).click();
    dialog = page.getByRole('dialog');
    await seeText(dialog, 'cannot be undone');
    await dialog.getByRole('button', { name: 'Anonymise' }).click();
    await page.getByText('This customer was anonymised').waitFor();
    const c = (await api.all('/customers'))[0];
    assert.equal(c.anonymised, true);
    assert.equal(c.email, null);
  });
});

test('a customer can be quick-added from the sell screen and edited later', async () => {
  await withShop(async ({ page, api }) => {
    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile][data-name="Iced tea"]').click();
    await page.getByRole('button', { name: 'Add customer (optional)' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByLabel('Search by name, phone or email').fill('Grace Hopper');
    await dialog.getByText('No customers found').waitFor();
    await dialog.getByRole('button', { name: 'New customer' }).click();
    dialog = page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Name').inputValue(), 'Grace Hopper');
    await dialog.getByRole('button', { name: 'Add and attach' }).click();
    await seeText(page.locator('.chip-customer'), 'Grace Hopper');
    await page.getByTestId('place-order').click();
    await page.getByTestId('receipt').waitFor();
    const grace = (await api.all('/customers')).find((c) => c.name === 'Grace Hopper');
    assert.equal((await api.get('/orders')).items[0].customer_id, grace.id);
    await page.getByTestId('new-sale').click();

    await page.goto(`/#/customers/${grace.id}`);
    await page.getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Email (optional)').fill('grace@example.com');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('grace@example.com').waitFor();
    assert.equal((await api.get(`/customers/${grace.id}`)).email, 'grace@example.com');
  });
});
