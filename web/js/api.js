// The one way the app talks to the server: JSON over /api/v1, problem+json errors turned into
// ApiError, the access token sent on every call, and connection trouble reported to the
// shared state so the banner and the token screen can react.
import { API_BASE, TOKEN_KEY } from './config.js';
import { state, setState } from './state.js';

export class ApiError extends Error {
  constructor({ status = 0, code = 'network', title = '', detail = '', errors = [], shortages = [], body = null }) {
    super(detail || title || code);
    this.body = body;
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.errors = errors || [];
    this.shortages = shortages || [];
  }
  /** True when the request may not have reached the server (safe to retry idempotent work). */
  get network() { return this.code === 'network' || this.code === 'timeout'; }
  /** True when retrying the same request later may succeed. */
  get transient() {
    return this.network || this.status >= 500 || ['unavailable', 'request_in_progress', 'rate_limited'].includes(this.code);
  }
  fieldErrors() {
    const out = {};
    for (const e of this.errors) {
      const key = e.field || '';
      out[key] = out[key] ? `${out[key]}; ${e.message}` : e.message;
    }
    return out;
  }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}
export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: keep it for this page only */ }
  memoryToken = token || '';
}
let memoryToken = '';
function token() { return getToken() || memoryToken; }

export function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return `${API_BASE}${path}${s ? '?' + s : ''}`;
}

const TIMEOUT_MS = 15000;

/**
 * One HTTP call. Resolves to { status, data } on 2xx; throws ApiError otherwise.
 * `quiet` keeps a failure from flipping the offline banner (used by the health poll itself).
 */
export async function call(method, path, { query, body, headers = {}, quiet = false, accept } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  const init = {
    method,
    headers: { Accept: accept || 'application/json', ...authHeaders(), ...headers },
    signal: ctrl.signal,
    cache: 'no-store',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (e) {
    clearTimeout(timer);
    if (!quiet) reportUnreachable();
    throw new ApiError({
      code: e && e.name === 'AbortError' ? 'timeout' : 'network',
      title: 'No connection',
      detail: e && e.name === 'AbortError'
        ? 'The shop server took too long to answer.'
        : 'The shop server could not be reached.',
    });
  }
  clearTimeout(timer);
  if (state.offline && !quiet) setState({ offline: false, online: state.online + 1 });

  if (res.status === 401) {
    setState({ auth: { needed: true, had: !!token() } });
  }
  const type = res.headers.get('content-type') || '';
  let data = null;
  if (res.status !== 204) {
    if (type.includes('json')) {
      try { data = await res.json(); } catch { data = null; }
    } else {
      try { data = await res.text(); } catch { data = null; }
    }
  }
  if (res.ok) return { status: res.status, data, headers: res.headers };
  const p = data && typeof data === 'object' ? data : {};
  throw new ApiError({
    status: res.status,
    code: p.code || codeFor(res.status),
    title: p.title || res.statusText || 'Request failed',
    detail: p.detail || (typeof data === 'string' && data.length < 300 ? data : ''),
    errors: p.errors,
    shortages: p.shortages,
    body: data,
  });
}

function codeFor(status) {
  return ({ 400: 'validation_failed', 401: 'unauthorized', 404: 'not_found', 409: 'conflict', 422: 'validation_failed', 429: 'rate_limited', 503: 'unavailable' })[status]
    || (status >= 500 ? 'server_error' : 'error');
}

function reportUnreachable() {
  if (!state.offline) setState({ offline: true });
}

export const get = (path, query, opts) => call('GET', path, { query, ...opts }).then((r) => r.data);
export const post = (path, body, opts) => call('POST', path, { body, ...opts }).then((r) => r.data);
export const patch = (path, body, opts) => call('PATCH', path, { body, ...opts }).then((r) => r.data);
export const del = (path, opts) => call('DELETE', path, opts).then((r) => r.data);

/** Every item of a list endpoint, following next_cursor (bounded so a bug cannot loop forever). */
export async function listAll(path, query = {}, { max = 5000 } = {}) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < 100; i++) {
    const page = await get(path, { ...query, limit: 200, cursor });
    items.push(...(page.items || []));
    cursor = page.next_cursor;
    if (!cursor || items.length >= max) break;
  }
  return items;
}

/** Items of a newest-first list until `stop(item)` says an item is too old. */
export async function listUntil(path, query, stop, { max = 2000 } = {}) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < 50; i++) {
    const page = await get(path, { ...query, limit: 200, cursor });
    for (const it of page.items || []) {
      if (stop(it)) return items;
      items.push(it);
    }
    cursor = page.next_cursor;
    if (!cursor || items.length >= max) break;
  }
  return items;
}

/** Human text for an error, for a staff member rather than a developer. */
export function describe(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
  switch (err.code) {
    case 'network': return 'No connection to the shop server.';
    case 'timeout': return 'The shop server took too long to answer. Please try again.';
    case 'unauthorized': return 'The access token is missing or wrong.';
    case 'not_found': return err.detail || 'That no longer exists.';
    case 'rate_limited': return 'The server is busy. Please wait a moment and try again.';
    case 'unavailable': return err.detail ? `The shop is temporarily unavailable: ${err.detail}` : 'The shop is temporarily unavailable. Please try again shortly.';
    case 'request_in_progress': return 'This request is still being processed. Please wait a moment.';
    case 'idempotency_key_reused': return 'This sale was already sent with different items.';
    case 'insufficient_stock': {
      if (err.shortages.length) return shortageText(err.shortages);
      return err.detail || 'Not enough stock.';
    }
    case 'validation_failed': {
      const list = err.errors.map((e) => (e.field ? `${fieldName(e.field)}: ${e.message}` : e.message));
      if (list.length) return `Please check: ${list.join('; ')}.`;
      return err.detail || 'Some fields are not valid.';
    }
    default: return err.detail || err.title || 'Something went wrong. Please try again.';
  }
}

export function shortageText(shortages) {
  return 'Not enough ' + shortages.map((s) => `${s.name} (needs ${s.needed} ${s.unit === 'piece' ? 'pcs' : s.unit}, ${s.available} left)`).join(', ') + '.';
}

function fieldName(field) {
  return String(field).replace(/\[(\d+)\]/g, (_, n) => ` ${Number(n) + 1}`).replace(/[._]/g, ' ').trim();
}

/** A UUID for idempotency keys; randomUUID needs a secure context, so fall back on getRandomValues. */
export function newKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') {
    try { return crypto.randomUUID(); } catch { /* insecure context */ }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Downloads an API resource as a file, sending the token (a plain link could not). */
export async function download(path, query, filename, accept) {
  const res = await call('GET', path, { query, accept });
  const data = res.data;
  const text = typeof data === 'string' ? data : JSON.stringify(data, null, 2);
  const blob = new Blob([text], { type: res.headers.get('content-type') || 'application/octet-stream' });
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}
