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

test('an empty ingredient row is an error to fix, never dropped; a product without a recipe is shown as not limited by stock', async () => {
  await withShop(async ({ page, api }) => {
    const posted = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/v1/products')) posted.push(r.postDataJSON()); });
    await page.goto('/#/products');
    await card(page, 'Lemonade').waitFor();
    await page.getByRole('button', { name: 'New product' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Gift card');
    await dialog.getByLabel('Price').fill('10.00');
    // The new-product form starts with one empty ingredient row: left as it is, it is an error.
    await dialog.getByRole('button', { name: 'Create product' }).click();
    await seeText(dialog, 'Choose an ingredient, or remove this row.');
    assert.equal(posted.length, 0, 'nothing is sent while a row is empty');

    // Removing the row says what a product without a recipe means, and saves it as such.
    await dialog.getByRole('button', { name: 'Remove ingredient 1' }).click();
    await seeText(dialog, 'takes nothing from stock');
    await dialog.getByRole('button', { name: 'Create product' }).click();
    await seeText(card(page, 'Gift card'), 'No recipe');
    await seeText(card(page, 'Gift card').getByTestId('can-make'), 'Not limited by stock');
    assert.deepEqual(posted.map((b) => b.recipe), [[]]);
    const created = await api.product('Gift card');
    assert.equal(created.can_make, null);
    assert.equal(await card(page, 'Gift card').getByText(/Can make|Cannot be made/).count(), 0);

    // On the till it can be sold, and is never shown as out of stock or as a number.
    await page.goto('/#/sell');
    const tile = page.locator('[data-testid=product-tile][data-name="Gift card"]');
    await seeText(tile.getByTestId('can-make'), 'Not limited by stock');
    await tile.click();
    await tile.click();
    await seeText(page.getByTestId('cart-lines'), 'Gift card');
    assert.equal(await page.getByTestId('cart-lines').getByText('can be made').count(), 0);
    await shot(page, 'sell-not-limited-by-stock');
  });
});
