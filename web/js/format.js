import { CURRENCY_SYMBOL, MINOR_UNITS } from './config.js';

const DIGITS = String(MINOR_UNITS).length - 1;
const group = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** 350 -> "$3.50" (integer arithmetic only). */
export function money(minor) {
  const n = Number(minor) || 0;
  const sign = n < 0 ? '−' : '';
  const abs = Math.abs(n);
  const major = Math.floor(abs / MINOR_UNITS);
  const rest = String(abs % MINOR_UNITS).padStart(DIGITS, '0');
  return `${sign}${CURRENCY_SYMBOL}${group.format(major)}${DIGITS ? '.' + rest : ''}`;
}

/** Same without the symbol, for form inputs: 350 -> "3.50". */
export function moneyInput(minor) {
  const n = Math.abs(Number(minor) || 0);
  const major = Math.floor(n / MINOR_UNITS);
  return DIGITS ? `${major}.${String(n % MINOR_UNITS).padStart(DIGITS, '0')}` : String(major);
}

/** "3.5" / "3.50" / "3" -> 350; null when it is not an amount. No floats involved. */
export function parseMoney(raw) {
  const s = String(raw ?? '').trim().replace(CURRENCY_SYMBOL, '').replace(',', '.');
  const m = /^(\d{1,9})(?:\.(\d*))?$/.exec(s);
  if (!m) return null;
  const frac = (m[2] || '');
  if (frac.length > DIGITS) return null;
  return Number(m[1]) * MINOR_UNITS + Number(frac.padEnd(DIGITS, '0') || 0);
}

export function parseWhole(raw) {
  const s = String(raw ?? '').trim();
  if (!/^\d{1,10}$/.test(s)) return null;
  return Number(s);
}

export function num(n) {
  return group.format(Number(n) || 0);
}

const UNIT_LABEL = { g: 'g', ml: 'ml', piece: 'pcs' };
const UNIT_NAME = { g: 'grams', ml: 'millilitres', piece: 'pieces' };
export function unitLabel(unit) { return UNIT_LABEL[unit] || unit || ''; }
export function unitName(unit) { return UNIT_NAME[unit] || unit || ''; }

/** 1250, "g" -> "1,250 g"; 3, "piece" -> "3 pcs" (1 pc). */
export function qty(n, unit) {
  if (unit === 'piece') return `${num(n)} ${Number(n) === 1 ? 'pc' : 'pcs'}`;
  return `${num(n)} ${unitLabel(unit)}`;
}

/** Signed quantity for ledgers: "+500 g", "−120 ml". */
export function signedQty(n, unit) {
  const v = Number(n) || 0;
  const s = v > 0 ? '+' : v < 0 ? '−' : '±';
  return `${s}${qty(Math.abs(v), unit)}`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });

/** RFC 3339 UTC -> local "14:05" today, else "3 Nov 2026, 14:05". */
export function when(rfc3339) {
  if (!rfc3339) return '';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return '';
  if (sameLocalDay(d, new Date())) return `Today, ${timeFmt.format(d)}`;
  return `${dateFmt.format(d)}, ${timeFmt.format(d)}`;
}
export function timeOnly(rfc3339) {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? '' : timeFmt.format(d);
}
export function dateOnly(rfc3339) {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? '' : dateFmt.format(d);
}
/** "2026-11-25" (a local calendar day) -> "Wed 25 Nov". */
export function dayLabel(ymd) {
  const [y, m, d] = ymd.split('-').map(Number);
  return dayFmt.format(new Date(y, m - 1, d));
}
export function sameLocalDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}
export function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d;
}
/** Local calendar date as YYYY-MM-DD. */
export function ymd(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
export function addDays(d, n) {
  const x = new Date(d);
  x.setDate(x.getDate() + n);
  return x;
}

export function plural(n, one, many) {
  return `${num(n)} ${Number(n) === 1 ? one : many}`;
}

export const STATUS_LABEL = {
  pending: 'Pending',
  confirmed: 'Confirmed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};
export const REASON_LABEL = {
  sale: 'Sale',
  cancel: 'Cancelled sale',
  restock: 'Restock',
  waste: 'Waste',
  count: 'Stock count',
};

/** Short customer-facing order number from an opaque id (last 6 characters). */
export function orderNo(id) {
  const s = String(id || '').replace(/[^0-9A-Za-z]/g, '');
  return '#' + s.slice(-6).toUpperCase();
}
