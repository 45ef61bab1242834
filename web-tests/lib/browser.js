// Headless Chromium from the system (Debian's package); Playwright never downloads a browser here.
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');
export const screenshotDir = join(repoRoot, 'target', 'screenshots');

export function chromiumPath() {
  const p = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`Chromium not found at ${p}; install it with: apt-get install -y chromium`);
  return p;
}

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A fresh page at tablet size; page errors fail loudly in the test output. */
export async function tabletPage(browser, baseURL, { width = 1024, height = 768 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, baseURL, acceptDownloads: true, locale: 'en-US' });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => { page.errors.push(e); console.error('page error:', e.message); });
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) console.error('console:', m.text()); });
  return { context, page };
}

export async function shot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.waitForTimeout(250); // let dialogs and toasts finish animating in
  await page.screenshot({ path: join(screenshotDir, `${name}.png`) });
}
