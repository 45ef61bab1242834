import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { withShop, closeBrowser } from '../lib/fixture.js';
import { shot } from '../lib/browser.js';
import { seeText } from '../lib/expect.js';

after(closeBrowser);

const row = (page, name) => page.locator(`[data-testid=ingredient-row][data-name="${name}"]`);

test('restock, waste and a count change on-hand, and the ledger shows each move', async () => {
  await withShop(async ({ page, api }) => {
    const before = (await api.ingredient('Tea leaves')).on_hand;
    await page.goto('/#/stock');
    await row(page, 'Tea leaves').waitFor();
    await shot(page, 'stock');

    await row(page, 'Tea leaves').getByRole('button', { name: 'Restock Tea leaves' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Quantity received/).fill('500');
    await seeText(dialog, `After this: ${(before + 500).toLocaleString('en-US')} g`);
    await dialog.getByLabel(/Supplier/).fill('Monday delivery');
    await shot(page, 'stock-restock');
    await dialog.getByRole('button', { name: 'Add to stock' }).click();
    await seeText(row(page, 'Tea leaves').getByTestId('on-hand'), `${(before + 500).toLocaleString('en-US')} g`);
    assert.equal((await api.ingredient('Tea leaves')).on_hand, before + 500);

    await row(page, 'Tea leaves').getByRole('button', { name: 'Record waste of Tea leaves' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Quantity thrown away/).fill('100');
    await dialog.getByRole('button', { name: 'Record waste' }).click();
    await seeText(row(page, 'Tea leaves').getByTestId('on-hand'), `${(before + 400).toLocaleString('en-US')} g`);

    await row(page, 'Tea leaves').getByRole('button', { name: 'Count Tea leaves' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Counted on hand/).fill(String(before + 390));
    await dialog.getByRole('button', { name: 'Save count' }).click();
    const variance = page.getByTestId('variance');
    await seeText(variance, '−10 g');
    await shot(page, 'stock-count-variance');
    await page.getByRole('dialog').getByRole('button', { name: 'Done' }).click();
    await seeText(row(page, 'Tea leaves').getByTestId('on-hand'), `${(before + 390).toLocaleString('en-US')} g`);

    await row(page, 'Tea leaves').getByRole('link', { name: 'Tea leaves' }).click();
    const ledger = page.getByTestId('ledger');
    await ledger.waitFor();
    await seeText(ledger.locator('tbody tr').nth(0), 'Stock count');
    await seeText(ledger.locator('tbody tr').nth(0), '−10 g');
    await seeText(ledger.locator('tbody tr').nth(1), 'Waste');
    await seeText(ledger.locator('tbody tr').nth(2), '+500 g');
    await seeText(ledger.locator('tbody tr').nth(2), 'Monday delivery');
    await shot(page, 'stock-ledger');
  });
});

test('a new ingredient can be created and shows as low when under its reorder level', async () => {
  await withShop(async ({ page, api }) => {
    await page.goto('/#/stock');
    await page.getByRole('button', { name: 'New ingredient' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Oat milk');
    await dialog.getByLabel('Counted in').selectOption('ml');
    await dialog.getByLabel('On hand now').fill('800');
    await dialog.getByLabel('Reorder level').fill('1000');
    await shot(page, 'stock-new-ingredient');
    await dialog.getByRole('button', { name: 'Add ingredient' }).click();
    const r = row(page, 'Oat milk');
    await seeText(r, '800 ml');
    await seeText(r, 'Low');
    const ing = await api.ingredient('Oat milk');
    assert.equal(ing.unit, 'ml');
    assert.equal(ing.low, true);
  });
});
