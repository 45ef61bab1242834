import { html, useState, useEffect } from '../lib.js';
import { Icon } from '../icons.js';
import { get, post, listUntil, describe } from '../api.js';
import { customerNames, customerById, invalidateCatalog } from '../catalog.js';
import { money, timeOnly, when, orderNo, plural, startOfToday, STATUS_LABEL } from '../format.js';
import { useLoad, PageHeader, Button, ErrorNote, Empty, Skeleton, Segmented, StatusBadge, Confirm, Stat, Alert } from '../ui.js';
import { go } from '../router.js';
import { toast } from '../state.js';
import { PENDING_POLL_MS } from '../config.js';

const FILTERS = ['all', 'confirmed', 'pending', 'failed', 'cancelled'];

export function OrdersPage({ query }) {
  const status = FILTERS.includes(query.get('status')) ? query.get('status') : 'all';
  const start = startOfToday().getTime();
  const data = useLoad(async () => {
    const orders = await listUntil('/orders', { status: status === 'all' ? undefined : status },
      (o) => new Date(o.created_at).getTime() < start);
    const names = await customerNames(orders.map((o) => o.customer_id));
    return { orders, names };
  }, [status], { refreshMs: 30000 });
  const orders = data.data?.orders || [];
  const confirmed = orders.filter((o) => o.status === 'confirmed');
  const revenue = confirmed.reduce((s, o) => s + o.total, 0);

  return html`<div class="page">
    <${PageHeader} title="Today's orders" sub=${new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' }).format(new Date())}>
      <${Button} icon="refresh" onClick=${data.reload} busy=${data.loading && !!data.data}>Refresh<//>
    <//>
    ${status === 'all' && data.data && html`<div class="stats">
      <${Stat} label="Orders" value=${orders.length} />
      <${Stat} label="Confirmed sales" value=${money(revenue)} />
      <${Stat} label="Cancelled" value=${orders.filter((o) => o.status === 'cancelled').length} />
    </div>`}
    <${Segmented} label="Filter by status" value=${status}
      options=${FILTERS.map((f) => ({ value: f, label: f === 'all' ? 'All' : STATUS_LABEL[f] }))}
      onChange=${(v) => go(v === 'all' ? '/orders' : `/orders?status=${v}`)} />
    <${ErrorNote} error=${data.error} onRetry=${data.reload} />
    ${!data.data && !data.error && html`<${Skeleton} rows=${5} />`}
    ${data.data && orders.length === 0 && html`<${Empty} icon="orders" title=${status === 'all' ? 'No orders yet today' : `No ${STATUS_LABEL[status].toLowerCase()} orders today`}>
      Orders placed on the <a href="#/sell">Sell</a> screen show up here.<//>`}
    ${orders.length > 0 && html`<div class="card list-card">
      <table class="table rows-link" data-testid="orders-table">
        <thead><tr><th>Time</th><th>Order</th><th>Items</th><th>Customer</th><th>Status</th><th class="num">Total</th><th><span class="sr">Open</span></th></tr></thead>
        <tbody>
          ${orders.map((o) => {
            const c = o.customer_id && data.data.names.get(o.customer_id);
            return html`<tr key=${o.id} data-testid="order-row" onClick=${() => go('/orders/' + encodeURIComponent(o.id))}>
              <td class="nowrap">${timeOnly(o.created_at)}</td>
              <td class="mono">${orderNo(o.id)}</td>
              <td>${o.lines.map((l) => `${l.quantity}× ${l.name}`).join(', ')}</td>
              <td>${c ? c.name : html`<span class="muted">Walk-in</span>`}</td>
              <td><${StatusBadge} status=${o.status} label=${STATUS_LABEL[o.status]} /></td>
              <td class="num">${money(o.total)}</td>
              <td class="go"><a href=${'#/orders/' + encodeURIComponent(o.id)} aria-label=${`Open order ${orderNo(o.id)}`}><${Icon} name="chevron" size=${18} /></a></td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`}
  </div>`;
}

export function OrderPage({ id }) {
  const data = useLoad(async () => {
    const order = await get(`/orders/${encodeURIComponent(id)}`);
    const customer = order.customer_id ? await customerById(order.customer_id).catch(() => null) : null;
    return { order, customer };
  }, [id]);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const o = data.data?.order;
  const c = data.data?.customer;
  // A pending order settles on its own: keep looking until it is confirmed or failed.
  useEffect(() => {
    if (!o || o.status !== 'pending' || data.loading) return undefined;
    const t = setTimeout(data.reload, PENDING_POLL_MS);
    return () => clearTimeout(t);
  }, [o, data.loading]);

  const cancel = async () => {
    setBusy(true); setErr(null);
    try {
      const updated = await post(`/orders/${encodeURIComponent(id)}/cancel`);
      data.setData((d) => ({ ...d, order: updated }));
      invalidateCatalog();
      setAsking(false);
      toast('Order cancelled — stock returned');
    } catch (e) {
      setErr(e);
      if (e.code === 'conflict') data.reload();
    } finally { setBusy(false); }
  };

  return html`<div class="page narrow">
    <${PageHeader} back="#/orders" title=${o ? `Order ${orderNo(o.id)}` : 'Order'} sub=${o ? when(o.created_at) : ''}>
      ${o && o.status === 'confirmed' && html`<${Button} kind="danger-ghost" icon="x" onClick=${() => { setErr(null); setAsking(true); }} data-testid="cancel-order">Cancel order<//>`}
    <//>
    <${ErrorNote} error=${data.error} onRetry=${data.reload} />
    ${!o && !data.error && html`<${Skeleton} rows=${4} />`}
    ${o && html`
      ${o.status === 'failed' && html`<${Alert} title="This order failed">${o.failure_reason || 'It was not completed.'}<//>`}
      ${o.status === 'pending' && html`<${Alert} tone="warn" title="Waiting for confirmation">The order has not been confirmed yet.<//>`}
      <div class="card">
        <dl class="facts">
          <div><dt>Status</dt><dd data-testid="order-status"><${StatusBadge} status=${o.status} label=${STATUS_LABEL[o.status]} /></dd></div>
          <div><dt>Customer</dt><dd>${c ? html`<a href=${'#/customers/' + encodeURIComponent(c.id)}>${c.name}</a>` : o.customer_id ? 'Unknown customer' : 'Walk-in'}</dd></div>
          <div><dt>Placed</dt><dd>${when(o.created_at)}</dd></div>
          ${o.updated_at !== o.created_at && html`<div><dt>Last change</dt><dd>${when(o.updated_at)}</dd></div>`}
          ${o.customer_id && html`<div><dt>Points</dt><dd>${plural(o.points, 'point', 'points')}</dd></div>`}
        </dl>
      </div>
      <div class="card list-card">
        <table class="table">
          <thead><tr><th>Product</th><th class="num">Qty</th><th class="num">Price</th><th class="num">Amount</th></tr></thead>
          <tbody>${o.lines.map((l) => html`<tr><td>${l.name}</td><td class="num">${l.quantity}</td><td class="num">${money(l.unit_price)}</td><td class="num">${money(l.unit_price * l.quantity)}</td></tr>`)}</tbody>
          <tfoot><tr><th colspan="3">Total</th><td class="num"><strong>${money(o.total)}</strong></td></tr></tfoot>
        </table>
      </div>
    `}
    ${asking && o && html`<${Confirm} title=${`Cancel order ${orderNo(o.id)}?`} confirmLabel="Cancel order" busy=${busy} error=${err}
      onConfirm=${cancel} onClose=${() => setAsking(false)}>
      <p>The sale of ${money(o.total)} is voided and its ingredients go back into stock.${o.customer_id && o.points ? ` ${c ? c.name : 'The customer'} loses the ${plural(o.points, 'point', 'points')} earned.` : ''} This cannot be undone.</p>
    <//>`}
  </div>`;
}
