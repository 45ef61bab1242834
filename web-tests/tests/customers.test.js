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

test('a customer is shown, found and exported by their name as a person reads it', async () => {
  await withShop(async ({ page, api }) => {
    await api.post('/customers', { name: 'Zoë 🍋 Müller', phone: '+44 7700 900123' });
    await api.post('/customers', { name: 'Ada Lovelace', phone: '+1 555 0100' });
    await page.goto('/#/customers');
    const list = page.getByTestId('customer-list');
    const zoe = list.getByRole('link', { name: /Zoë 🍋 Müller/ });
    // The avatar is the first character of each word a person reads as one ("Z", "M"), never
    // half of an emoji's UTF-16 pair.
    assert.equal(await zoe.locator('.avatar').innerText(), 'ZM');

    const search = page.getByLabel('Search customers');
    const rows = (n) => page.waitForFunction(
      (count) => document.querySelectorAll('[data-testid=customer-list] li').length === count,
      n,
      { timeout: 5000 },
    );
    for (const q of ['MÜLLER', 'ZOË', 'zoe', '+447700900123']) {
      await search.fill('');
      await rows(2);
      await search.fill(q);
      await rows(1).catch(() => assert.fail(`search ${q} did not narrow the list to one customer`));
      const names = await list.locator('.person-text strong').allInnerTexts();
      assert.deepEqual(names, ['Zoë 🍋 Müller'], `search ${q}`);
    }
    await shot(page, 'customers-search-unicode');

    await zoe.click();
    await page.getByRole('heading', { name: 'Zoë 🍋 Müller' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    assert.equal(download.suggestedFilename(), 'zoë-müller-export.json');

    // The sell screen's customer picker shows the same avatar.
    await page.goto('/#/sell');
    await page.getByRole('button', { name: 'Add customer (optional)' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Search by name, phone or email').fill('muller');
    await seeText(dialog.locator('.pick'), 'Zoë 🍋 Müller');
    assert.equal(await dialog.locator('.pick .avatar').first().innerText(), 'ZM');
  });
});

test('an avatar takes the first letter of each word, and an export file its compatibility form', async () => {
  await withShop(async ({ page, api }) => {
    await api.post('/customers', { name: '(Bob) Smith' });
    await api.post('/customers', { name: "'Quoted' Name" });
    const abc = await api.post('/customers', { name: 'ⓐbc' });
    await page.goto('/#/customers');
    const list = page.getByTestId('customer-list');
    const avatar = (name) => list.getByRole('link', { name }).locator('.avatar').innerText();
    // Punctuation before a word's first letter is skipped.
    assert.equal(await avatar(/\(Bob\) Smith/), 'BS');
    assert.equal(await avatar(/'Quoted' Name/), 'QN');
    // A blank glyph parts words as a space does. The server stores such a name without it, so
    // the rule is tried on the page's own code.
    const fromPage = await page.evaluate(async () => {
      const text = await import(new URL('js/text.js', location.href).href);
      return ['\u2800Zoë', 'Zoë\u2800Müller', '🍋'].map(text.initials);
    });
    assert.deepEqual(fromPage, ['Z', 'ZM', '🍋']);

    await page.goto(`/#/customers/${abc.id}`);
    await page.getByRole('heading', { name: 'ⓐbc' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    assert.equal(download.suggestedFilename(), 'abc-export.json');

    // A full-width @ (a phone's keyboard in a CJK input mode) is an @ to the form, as to the server.
    await page.getByRole('button', { name: 'Edit' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Email (optional)').fill('abc＠example.org');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('abc@example.org').waitFor();
    assert.equal((await api.get(`/customers/${abc.id}`)).email, 'abc@example.org');
  });
});
