import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText } from '../lib/expect.js';

after(closeBrowser);

const card = (page, name) => page.locator(`[data-testid=product-card][data-name="${name}"]`);

test('a product is created with a recipe, repriced, and taken off sale', async () => {
  await withShop(async ({ page, api }) => {
    await page.goto('/#/products');
    await card(page, 'Lemonade').waitFor();
    await page.getByRole('button', { name: 'New product' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Arnold Palmer');
    await dialog.getByLabel('Price').fill('4.25');
    await dialog.getByLabel('Ingredient 1', { exact: true }).selectOption({ label: 'Tea leaves (g)' });
    await dialog.getByLabel('Amount of ingredient 1').fill('4');
    await dialog.getByRole('button', { name: 'Add ingredient' }).click();
    await dialog.getByLabel('Ingredient 2', { exact: true }).selectOption({ label: 'Lemons (pcs)' });
    await dialog.getByLabel('Amount of ingredient 2').fill('1');
    await shot(page, 'products-new');
    await dialog.getByRole('button', { name: 'Create product' }).click();
    await seeText(card(page, 'Arnold Palmer'), '$4.25');
    await seeText(card(page, 'Arnold Palmer'), 'Tea leaves');
    const created = await api.product('Arnold Palmer');
    assert.equal(created.price, 425);
    assert.equal(created.recipe.length, 2);
    assert.equal(created.active, true);

    // It is on the till.
    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile][data-name="Arnold Palmer"]').waitFor();

    // Reprice and take it off sale.
    await page.goto('/#/products');
    await page.getByRole('button', { name: 'Edit Arnold Palmer' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Price').fill('4.50');
    await dialog.getByRole('switch', { name: /On sale/ }).uncheck();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await seeText(card(page, 'Arnold Palmer'), '$4.50');
    await seeText(card(page, 'Arnold Palmer'), 'Off sale');
    const edited = await api.product('Arnold Palmer');
    assert.equal(edited.price, 450);
    assert.equal(edited.active, false);

    await page.goto('/#/sell');
    await page.locator('[data-testid=product-tile][data-name="Lemonade"]').waitFor();
    assert.equal(await page.locator('[data-testid=product-tile][data-name="Arnold Palmer"]').count(), 0);
  });
});

test('a bad price is refused with a readable message before anything is sent', async () => {
  await withShop(async ({ page }) => {
    let posted = false;
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/v1/products')) posted = true; });
    await page.goto('/#/products');
    await page.getByRole('button', { name: 'New product' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Mystery');
    await dialog.getByLabel('Price').fill('3.999');
    await dialog.getByRole('button', { name: 'Create product' }).click();
    await seeText(dialog, 'Enter a price like 3.50');
    assert.equal(posted, false);
  });
});
