// One fresh server and one browser page per test.
import { launch, tabletPage } from './browser.js';
import { startShop } from './server.js';

let browser = null;
export async function sharedBrowser() {
  if (!browser) browser = await launch();
  return browser;
}
export async function closeBrowser() {
  if (browser) await browser.close();
  browser = null;
}

/** Runs `fn({ shop, page, api })` with a fresh shop and page, and always cleans up. */
export async function withShop(opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  const shop = await startShop(opts);
  const b = await sharedBrowser();
  const { context, page } = await tabletPage(b, shop.url, opts.viewport);
  try {
    await fn({ shop, page, api: shop.api, context });
    if (page.errors.length) throw new Error(`errors in the page: ${page.errors.map((e) => e.message).join('; ')}`);
  } catch (e) {
    if (process.env.DEBUG_SERVER_LOG) console.error(shop.log());
    throw e;
  } finally {
    await context.close();
    await shop.stop();
  }
}
