// Starts a real Lemonade server (the debug binary) on a free loopback port with a fresh data
// folder, so every test gets its own shop and none depends on another's stock.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './browser.js';

export function binaryPath() {
  const bin = process.env.LEMONADE_BIN || join(repoRoot, 'target', 'debug', 'lemonade');
  if (!existsSync(bin)) throw new Error(`server binary not found at ${bin}; run: cargo build -p lemonade`);
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitForHealth(base, { token, timeoutMs = 20000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${base}/api/v1/health`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
      if (r.ok) return r.json();
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${base} did not become healthy: ${last}`);
}

/**
 * A fresh shop. `empty` skips the demo data; `token` makes the API require it.
 * Returns { url, api, stop(), restart() }.
 */
export async function startShop({ empty = false, token, port } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lemonade-web-test-'));
  port = port || (await freePort());
  const url = `http://127.0.0.1:${port}`;
  let proc = null;
  let log = '';
  const launch = async () => {
    const args = ['serve', '--addr', `127.0.0.1:${port}`, '--data', dir];
    if (empty) args.push('--empty');
    if (token) args.push('--token', token);
    proc = spawn(binaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' } });
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.exited = exited;
    try {
      await Promise.race([
        waitForHealth(url, { token }),
        exited.then((code) => { throw new Error(`server exited with ${code}:\n${log}`); }),
      ]);
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    }
  };
  const halt = async () => {
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await proc.exited;
    clearTimeout(t);
  };
  await launch();
  return {
    url,
    port,
    log: () => log,
    api: makeApi(url, token),
    /** Stops the process but keeps the data (to simulate an outage). */
    halt,
    /** Starts it again on the same port and data. */
    restart: launch,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A small client for arranging and checking state through the same public API. */
export function makeApi(base, token) {
  const req = async (method, path, body, headers = {}) => {
    const r = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    let data = text;
    try { data = JSON.parse(text); } catch { /* not JSON */ }
    if (!r.ok) {
      const e = new Error(`${method} ${path} -> ${r.status}: ${text}`);
      e.status = r.status;
      e.body = data;
      throw e;
    }
    return data;
  };
  const all = async (path) => {
    const items = [];
    let cursor = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page = await req('GET', `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  };
  return {
    get: (p) => req('GET', p),
    post: (p, b, h) => req('POST', p, b ?? {}, h),
    patch: (p, b) => req('PATCH', p, b),
    all,
    async product(name) {
      const p = (await all('/products')).find((x) => x.name === name);
      if (!p) throw new Error(`no product named ${name}`);
      return p;
    },
    async ingredient(name) {
      const i = (await all('/ingredients')).find((x) => x.name === name);
      if (!i) throw new Error(`no ingredient named ${name}`);
      return i;
    },
    order: (lines, customer_id, key = crypto.randomUUID()) =>
      req('POST', '/orders', { lines, ...(customer_id ? { customer_id } : {}) }, { 'Idempotency-Key': key }),
  };
}
