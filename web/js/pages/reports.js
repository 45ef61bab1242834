import { html, useState } from '../lib.js';
import { get, url, getToken, download, describe } from '../api.js';
import { money, num, dayLabel, ymd, addDays, plural } from '../format.js';
import { CURRENCY_SYMBOL } from '../config.js';
import { useLoad, PageHeader, Button, ErrorNote, Empty, Skeleton, Segmented, Stat, Input } from '../ui.js';
import { Icon } from '../icons.js';
import { toast } from '../state.js';
import { truncate, compareText } from '../text.js';

/** Best sellers first; equal ones by name, as a person sorts them. */
const byRevenue = (a, b) => b.revenue - a.revenue || compareText(a.name, b.name);

const PRESETS = [
  { id: 'today', label: 'Today', range: () => [new Date(), new Date()] },
  { id: '7', label: 'Last 7 days', range: () => [addDays(new Date(), -6), new Date()] },
  { id: '30', label: 'Last 30 days', range: () => [addDays(new Date(), -29), new Date()] },
  { id: 'month', label: 'This month', range: () => { const d = new Date(); return [new Date(d.getFullYear(), d.getMonth(), 1), d]; } },
];

export function ReportsPage() {
  const [range, setRange] = useState(() => { const [a, b] = PRESETS[1].range(); return { from: ymd(a), to: ymd(b), preset: '7' }; });
  const [by, setBy] = useState('day');
  const tz = -new Date().getTimezoneOffset();
  const valid = /^\d{4}-\d{2}-\d{2}$/.test(range.from) && /^\d{4}-\d{2}-\d{2}$/.test(range.to) && range.from <= range.to;
  const query = { from: range.from, to: range.to, by, tz_offset_minutes: tz };
  const data = useLoad(() => (valid ? get('/reports/sales', query) : Promise.resolve(null)), [range.from, range.to, by, valid]);
  const r = data.data;
  const csvHref = url('/reports/sales', { ...query, format: 'csv' });
  const csvName = `sales-by-${by}-${range.from}-to-${range.to}.csv`;

  const onCsv = async (e) => {
    if (!getToken()) return; // a plain link works without a token
    e.preventDefault();
    try { await download('/reports/sales', { ...query, format: 'csv' }, csvName, 'text/csv'); } catch (x) { toast(describe(x), 'error'); }
  };

  const rows = r ? (by === 'day' ? (r.days || []) : (r.products || [])) : [];
  const items = r ? (r.days ? r.days.reduce((s, d) => s + d.items, 0) : (r.products || []).reduce((s, p) => s + p.quantity, 0)) : 0;

  return html`<div class="page">
    <${PageHeader} title="Reports" sub="Confirmed sales; cancelled orders are not counted">
      <a class=${`btn btn-secondary ${valid ? '' : 'is-disabled'}`} href=${csvHref} download=${csvName} onClick=${onCsv} data-testid="csv-link">
        <${Icon} name="download" size=${20} /><span>Download CSV</span></a>
    <//>
    <div class="card report-controls">
      <${Segmented} label="Period" value=${range.preset}
        options=${PRESETS.map((p) => ({ value: p.id, label: p.label }))}
        onChange=${(id) => { const [a, b] = PRESETS.find((p) => p.id === id).range(); setRange({ from: ymd(a), to: ymd(b), preset: id }); }} />
      <div class="range">
        <${Input} label="From" type="date" value=${range.from} max=${range.to} onInput=${(v) => setRange({ ...range, from: v, preset: '' })} />
        <${Input} label="To" type="date" value=${range.to} min=${range.from} onInput=${(v) => setRange({ ...range, to: v, preset: '' })}
          error=${!valid && range.from && range.to ? 'Must be on or after the start date.' : ''} />
      </div>
    </div>
    <${Segmented} label="Group by" value=${by} onChange=${setBy}
      options=${[{ value: 'day', label: 'By day' }, { value: 'product', label: 'By product' }]} />
    <${ErrorNote} error=${data.error} onRetry=${data.reload} />
    ${valid && !r && !data.error && html`<${Skeleton} rows=${5} />`}
    ${r && html`
      <div class="stats">
        <${Stat} label="Revenue" value=${money(r.revenue)} tone="brand" />
        <${Stat} label="Orders" value=${num(r.orders)} />
        <${Stat} label="Items sold" value=${num(items)} />
        <${Stat} label="Average order" value=${r.orders ? money(Math.round(r.revenue / r.orders)) : '—'} />
      </div>
      ${rows.length === 0 || r.revenue === 0 && r.orders === 0
        ? html`<${Empty} icon="reports" title="No sales in this period">Try a longer range.<//>`
        : html`<div class="card chart-card">
            ${by === 'day' ? html`<${DayChart} days=${r.days || []} />` : html`<${ProductChart} products=${r.products || []} />`}
          </div>`}
      ${rows.length > 0 && html`<div class="card list-card">
        ${by === 'day'
          ? html`<table class="table" data-testid="report-table"><thead><tr><th>Day</th><th class="num">Orders</th><th class="num">Items</th><th class="num">Revenue</th></tr></thead>
              <tbody>${[...r.days].reverse().map((d) => html`<tr class=${d.orders ? '' : 'muted'}><td>${dayLabel(d.date)}</td><td class="num">${num(d.orders)}</td><td class="num">${num(d.items)}</td><td class="num">${money(d.revenue)}</td></tr>`)}</tbody>
              <tfoot><tr><th>Total</th><td class="num">${num(r.orders)}</td><td class="num">${num(items)}</td><td class="num"><strong>${money(r.revenue)}</strong></td></tr></tfoot></table>`
          : html`<table class="table" data-testid="report-table"><thead><tr><th>Product</th><th class="num">Orders</th><th class="num">Sold</th><th class="num">Revenue</th><th class="num hide-sm">Share</th></tr></thead>
              <tbody>${[...r.products].sort(byRevenue).map((p) => html`<tr><td>${p.name}</td><td class="num">${num(p.orders)}</td><td class="num">${num(p.quantity)}</td><td class="num">${money(p.revenue)}</td><td class="num hide-sm muted">${r.revenue ? Math.round((p.revenue / r.revenue) * 100) : 0}%</td></tr>`)}</tbody>
              <tfoot><tr><th>Total</th><td class="num">${num(r.orders)}</td><td class="num">${num(items)}</td><td class="num"><strong>${money(r.revenue)}</strong></td><td class="hide-sm"></td></tr></tfoot></table>`}
      </div>`}
    `}
  </div>`;
}

/** Narrow screens get a narrower drawing so its text stays readable once scaled. */
function chartWidth() {
  return typeof innerWidth === 'number' && innerWidth < 700 ? 480 : 900;
}

/** A round axis maximum and step for `max` minor units. */
function niceScale(max) {
  if (max <= 0) return { top: 100, step: 25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  return { top: Math.ceil(max / step) * step, step };
}

function shortMoney(minor) {
  const major = minor / 100;
  if (major >= 1000) return `${CURRENCY_SYMBOL}${(major / 1000).toFixed(major >= 10000 ? 0 : 1)}k`;
  return `${CURRENCY_SYMBOL}${Number.isInteger(major) ? major : major.toFixed(2)}`;
}

function DayChart({ days }) {
  const W = chartWidth(); const H = 260; const L = 56; const B = 34; const T = 12; const R = 8;
  const max = Math.max(0, ...days.map((d) => d.revenue));
  const { top, step } = niceScale(max);
  const n = days.length || 1;
  const slot = (W - L - R) / n;
  const bw = Math.max(2, Math.min(48, slot * 0.66));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const labelEvery = Math.ceil(n / (W < 900 ? 6 : 12));
  return html`<svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`Revenue by day, highest ${money(max)}`} data-testid="chart">
    ${Array.from({ length: Math.round(top / step) + 1 }, (_, k) => {
      const v = k * step;
      return html`<g><line class="grid" x1=${L} x2=${W - R} y1=${y(v)} y2=${y(v)} /><text class="axis" x=${L - 8} y=${y(v) + 4} text-anchor="end">${shortMoney(v)}</text></g>`;
    })}
    ${days.map((d, k) => {
      const x = L + slot * k + (slot - bw) / 2;
      const h = Math.max(d.revenue > 0 ? 2 : 0, y(0) - y(d.revenue));
      return html`<g>
        <rect class="bar" x=${x} y=${y(0) - h} width=${bw} height=${h} rx="3"><title>${dayLabel(d.date)}: ${money(d.revenue)} from ${plural(d.orders, 'order', 'orders')}</title></rect>
        ${k % labelEvery === 0 && html`<text class="axis" x=${x + bw / 2} y=${H - B + 18} text-anchor="middle">${shortDay(d.date, n)}</text>`}
      </g>`;
    })}
  </svg>`;
}

function shortDay(date, n) {
  const [yy, m, d] = date.split('-').map(Number);
  const dt = new Date(yy, m - 1, d);
  return n <= 7 ? dt.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' }) : dt.toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
}

function ProductChart({ products }) {
  const sorted = [...products].sort(byRevenue);
  const W = chartWidth(); const narrow = W < 900; const row = 40; const L = narrow ? 120 : 180; const R = narrow ? 80 : 110;
  const H = Math.max(row, sorted.length * row) + 8;
  const max = Math.max(1, ...sorted.map((p) => p.revenue));
  return html`<svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label="Revenue by product" data-testid="chart">
    ${sorted.map((p, k) => {
      const w = ((W - L - R) * p.revenue) / max;
      const yy = 4 + k * row;
      return html`<g>
        <text class="label" x=${L - 12} y=${yy + row / 2 + 1} text-anchor="end" dominant-baseline="middle">${truncate(p.name, narrow ? 14 : 22)}</text>
        <rect class="bar" x=${L} y=${yy + 7} width=${Math.max(p.revenue > 0 ? 2 : 0, w)} height=${row - 14} rx="3"><title>${p.name}: ${money(p.revenue)}, ${num(p.quantity)} sold</title></rect>
        <text class="value" x=${L + w + 8} y=${yy + row / 2 + 1} dominant-baseline="middle">${money(p.revenue)}</text>
      </g>`;
    })}
  </svg>`;
}
