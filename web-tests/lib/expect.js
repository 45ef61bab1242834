import assert from 'node:assert/strict';

/** Waits until some element of `locator` shows `expected` (a string or RegExp). */
export async function seeText(locator, expected, timeout = 5000) {
  try {
    await locator.filter({ hasText: expected }).first().waitFor({ timeout });
  } catch {
    const seen = await locator.first().innerText({ timeout: 500 }).catch(() => '(nothing)');
    assert.fail(`expected "${expected}", saw "${seen}"`);
  }
}
