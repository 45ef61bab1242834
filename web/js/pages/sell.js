// The counter screen: tap products into the cart, optionally attach a customer, place the
// order once. One idempotency key per cart, reused for every attempt of that cart.
import { html, useState, useEffect, useRef, useMemo } from '../lib.js';
import { Icon } from '../icons.js';
import { call, get, post, newKey, describe, shortageText } from '../api.js';
import { loadCatalog, invalidateCatalog, rememberCustomer, stockLimited, soldOut, beyondStock } from '../catalog.js';
import { money, num, plural, orderNo, when, qty as fmtQty } from '../format.js';
import { MAX_LINES, MAX_QTY, PENDING_POLL_MS } from '../config.js';
import { useLoad, Button, Alert, ErrorNote, Empty, Dialog, Input, Skeleton, useDebounced, StatusBadge } from '../ui.js';
import { toast } from '../state.js';
import { initials, isBlank, capitalise } from '../text.js';

const CART_KEY = 'lemonade.cart';

function freshCart() {
  return { key: newKey(), lines: [], customer: null, rejected: false };
}
function loadCart() {
  try {
    const c = JSON.parse(localStorage.getItem(CART_KEY) || 'null');
    if (c && typeof c.key === 'string' && Array.isArray(c.lines)) return c;
  } catch { /* ignore */ }
  return freshCart();
}
function saveCart(c) {
  try { localStorage.setItem(CART_KEY, JSON.stringify(c)); } catch { /* ignore */ }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function SellPage() {
  const cat = useLoad(() => loadCatalog({ force: true }), [], { refreshMs: 30000 });
  const [cart, setCartRaw] = useState(loadCart);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState(null);
  const [receipt, setReceipt] = useState(null);
  const [picking, setPicking] = useState(false);
  const inflight = useRef(false);

  useEffect(() => saveCart(cart), [cart]);

  // Any change to the cart after a definitive rejection starts a new attempt with a new key.
  const changeCart = (fn) => {
    if (inflight.current) return;
    setCartRaw((c) => {
      const next = fn(c);
      if (next === c) return c;
      if (c.rejected) return { ...next, key: newKey(), rejected: false };
      return next;
    });
    setError((e) => (e && e.code === 'insufficient_stock' ? e : null));
  };

  const products = (cat.data?.products || []).filter((p) => p.active);
  const prodById = cat.data?.prodById || new Map();
  const lines = cart.lines.filter((l) => prodById.size === 0 || prodById.has(l.product_id));
  const total = lines.reduce((s, l) => s + (prodById.get(l.product_id)?.price || 0) * l.quantity, 0);
  const count = lines.reduce((s, l) => s + l.quantity, 0);
  const qtyOf = (id) => cart.lines.find((l) => l.product_id === id)?.quantity || 0;

  const add = (p, d = 1) => changeCart((c) => {
    const cur = c.lines.find((l) => l.product_id === p.id);
    if (!cur && d > 0 && c.lines.length >= MAX_LINES) { toast(`An order holds at most ${MAX_LINES} different products.`, 'error'); return c; }
    const q = Math.max(0, Math.min(MAX_QTY, (cur?.quantity || 0) + d));
    const others = c.lines.filter((l) => l.product_id !== p.id);
    const nextLines = q === 0 ? others : cur ? c.lines.map((l) => (l.product_id === p.id ? { ...l, quantity: q } : l)) : [...c.lines, { product_id: p.id, quantity: q }];
    return { ...c, lines: nextLines };
  });
  const remove = (id) => changeCart((c) => ({ ...c, lines: c.lines.filter((l) => l.product_id !== id) }));
  const setCustomer = (cust) => changeCart((c) => ({ ...c, customer: cust ? { id: cust.id, name: cust.name, points: cust.points } : null }));
  const clear = () => { changeCart(() => ({ ...freshCart() })); setError(null); };

  async function place() {
    if (inflight.current || lines.length === 0) return;
    inflight.current = true;
    setSending(true);
    setError(null);
    const body = { lines: lines.map((l) => ({ product_id: l.product_id, quantity: l.quantity })) };
    if (cart.customer) body.customer_id = cart.customer.id;
    const key = cart.key;
    try {
      let order;
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await call('POST', '/orders', { body, headers: { 'Idempotency-Key': key } });
          order = r.data;
          break;
        } catch (e) {
          // Same key, same body: the server answers a retry with the first outcome.
          // A request still in progress is worth waiting for; a lost connection is retried
          // briefly, then left to the person (the offline banner says why).
          if (e.code === 'request_in_progress' && attempt < 20) { await sleep(500); continue; }
          if (e.transient && e.code !== 'request_in_progress' && attempt < 2) { await sleep(500 * (attempt + 1)); continue; }
          throw e;
        }
      }
      setReceipt(order);
      setCartRaw(freshCart());
      invalidateCatalog();
      cat.reload();
    } catch (e) {
      if (!e.transient) setCartRaw((c) => ({ ...c, rejected: true }));
      setError(e);
      if (e.code === 'insufficient_stock') cat.reload();
    } finally {
      inflight.current = false;
      setSending(false);
    }
  }

  const closeReceipt = () => { setReceipt(null); cat.reload(); };

  return html`<div class="sell">
    <section class="sell-products" aria-label="Products">
      <header class="page-head compact">
        <div class="page-title"><div><h1>Sell</h1><p class="sub">Tap a product to add it to the order</p></div></div>
        ${cat.loading && cat.data && html`<span class="spinner muted" aria-label="Refreshing"></span>`}
      </header>
      <${ErrorNote} error=${cat.error} onRetry=${cat.reload} />
      ${!cat.data && !cat.error && html`<div class="tiles">${[1, 2, 3, 4, 5, 6].map(() => html`<div class="tile tile-ghost"></div>`)}</div>`}
      ${cat.data && products.length === 0 && html`<${Empty} icon="products" title="No products on sale">Add products or switch them on under <a href="#/products">Products</a>.<//>`}
      <div class="tiles">
        ${products.map((p) => {
          const inCart = qtyOf(p.id);
          const out = soldOut(p);
          const over = beyondStock(p, inCart);
          const low = stockLimited(p) && p.can_make <= 5;
          const stock = out ? 'Out of stock' : stockLimited(p) ? `Can make ${num(p.can_make)}` : 'Not limited by stock';
          return html`<button type="button" key=${p.id} class=${`tile ${inCart ? 'in-cart' : ''} ${out ? 'is-out' : ''}`}
            data-testid="product-tile" data-name=${p.name}
            aria-label=${`${p.name}, ${money(p.price)}, ${stock.toLowerCase()}${inCart ? `, ${inCart} in order` : ''}`}
            onClick=${() => add(p)}>
            <span class="tile-name">${p.name}</span>
            <span class="tile-price">${money(p.price)}</span>
            <span class=${`tile-stock ${out ? 'out' : low || over ? 'low' : ''}`} data-testid="can-make">
              ${stock}
            </span>
            ${inCart > 0 && html`<span class="tile-count" aria-hidden="true">${inCart}</span>`}
          </button>`;
        })}
      </div>
    </section>

    <aside class="cart" aria-label="Current order">
      <div class="cart-head">
        <h2>Order</h2>
        ${lines.length > 0 && html`<button type="button" class="link-btn" onClick=${clear} disabled=${sending}>Clear</button>`}
      </div>

      <div class="cart-customer">
        ${cart.customer
          ? html`<div class="chip-customer">
              <span class="avatar">${initials(cart.customer.name)}</span>
              <span class="cc-text"><strong>${cart.customer.name}</strong><small>${plural(cart.customer.points || 0, 'point', 'points')}</small></span>
              <button type="button" class="icon-btn" aria-label="Remove customer" onClick=${() => setCustomer(null)} disabled=${sending}><${Icon} name="x" /></button>
            </div>`
          : html`<${Button} kind="ghost" icon="user" class="btn-block" onClick=${() => setPicking(true)} disabled=${sending}>Add customer (optional)<//>`}
      </div>

      <ul class="cart-lines" data-testid="cart-lines">
        ${lines.length === 0 && html`<li class="cart-empty"><${Icon} name="sell" size=${28} /><span>No items yet</span></li>`}
        ${lines.map((l) => {
          const p = prodById.get(l.product_id);
          if (!p) return null;
          const over = beyondStock(p, l.quantity);
          return html`<li key=${l.product_id} class="cart-line" data-testid="cart-line">
            <div class="cl-main">
              <span class="cl-name">${p.name}</span>
              <span class="cl-sub">${money(p.price)} each${over ? html` · <span class="warn-text">only ${num(Math.max(0, p.can_make))} can be made</span>` : ''}</span>
            </div>
            <div class="stepper" role="group" aria-label=${`Quantity of ${p.name}`}>
              <button type="button" aria-label=${`One less ${p.name}`} onClick=${() => add(p, -1)} disabled=${sending}><${Icon} name=${l.quantity === 1 ? 'trash' : 'minus'} size=${18} /></button>
              <output aria-live="polite">${l.quantity}</output>
              <button type="button" aria-label=${`One more ${p.name}`} onClick=${() => add(p, 1)} disabled=${sending || l.quantity >= MAX_QTY}><${Icon} name="plus" size=${18} /></button>
            </div>
            <span class="cl-total">${money(p.price * l.quantity)}</span>
          </li>`;
        })}
      </ul>

      <div class="cart-foot">
        ${error && html`<div class="cart-error" data-testid="order-error">${orderError(error, () => { setCartRaw((c) => ({ ...c, key: newKey(), rejected: false })); setError(null); })}</div>`}
        <div class="cart-total"><span>Total${count ? html` <small>${plural(count, 'item', 'items')}</small>` : ''}</span><strong data-testid="cart-total">${money(total)}</strong></div>
        <${Button} kind="primary" size="xl" class="btn-block place" busy=${sending} disabled=${lines.length === 0}
          onClick=${place} data-testid="place-order">
          ${sending ? 'Placing order…' : lines.length ? `Place order · ${money(total)}` : 'Place order'}
        <//>
      </div>
    </aside>

    ${picking && html`<${CustomerPicker} onClose=${() => setPicking(false)} onPick=${(c) => { setCustomer(c); setPicking(false); }} />`}
    ${receipt && html`<${Receipt} order=${receipt} prodById=${prodById} onClose=${closeReceipt} />`}
  </div>`;
}

function orderError(e, newAttempt) {
  if (e.code === 'insufficient_stock' && e.shortages.length) {
    return html`<${Alert} title="Not enough stock for this order">
      <ul class="shortages">${e.shortages.map((s) => html`<li data-testid="shortage"><strong>${s.name}</strong>: needs ${fmtQty(s.needed, s.unit)}, only ${fmtQty(s.available, s.unit)} left</li>`)}</ul>
      <span class="small">Remove or reduce items, then place the order again.</span>
    <//>`;
  }
  if (e.code === 'idempotency_key_reused') {
    return html`<${Alert} title="This sale was already sent with different items">
      An earlier attempt may have gone through. Check <a href="#/orders">today's orders</a> before taking payment.
      <div class="alert-actions"><${Button} size="sm" onClick=${newAttempt}>Send as a new sale<//></div>
    <//>`;
  }
  if (e.transient) {
    return html`<${Alert} tone="warn" title="The order could not be sent">
      ${describe(e)} Tap <strong>Place order</strong> again to retry — the sale will only be recorded once.
    <//>`;
  }
  return html`<${Alert} title="The order was not accepted">${describe(e)}<//>`;
}

function CustomerPicker({ onClose, onPick }) {
  const [q, setQ] = useState('');
  const dq = useDebounced(q, 200);
  const list = useLoad(() => get('/customers', { q: dq.trim() || undefined, limit: 20 }), [dq]);
  const [adding, setAdding] = useState(false);
  const [form, setForm] = useState({ name: '', phone: '', email: '' });
  const [errs, setErrs] = useState({});
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const items = (list.data?.items || []).filter((c) => !c.anonymised);

  const create = async () => {
    const e = {};
    if (isBlank(form.name)) e.name = 'Enter a name.';
    setErrs(e);
    if (Object.keys(e).length) return;
    setBusy(true); setErr(null);
    try {
      const body = { name: form.name.trim() };
      if (form.phone.trim()) body.phone = form.phone.trim();
      if (form.email.trim()) body.email = form.email.trim();
      const c = await post('/customers', body);
      rememberCustomer(c);
      toast(`${c.name} added`);
      onPick(c);
    } catch (x) {
      if (x.code === 'validation_failed') setErrs(x.fieldErrors());
      setErr(x);
    } finally { setBusy(false); }
  };

  if (adding) {
    return html`<${Dialog} title="New customer" onClose=${onClose} onSubmit=${create}
      footer=${html`<${Button} onClick=${() => setAdding(false)}>Back to search<//><${Button} kind="primary" type="submit" busy=${busy}>Add and attach<//>`}>
      <${Input} label="Name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} error=${errs.name} autocomplete="off" autofocus />
      <div class="grid-2">
        <${Input} label="Phone (optional)" type="tel" value=${form.phone} onInput=${(v) => setForm({ ...form, phone: v })} error=${errs.phone} autocomplete="off" />
        <${Input} label="Email (optional)" type="email" value=${form.email} onInput=${(v) => setForm({ ...form, email: v })} error=${errs.email} autocomplete="off" />
      </div>
      ${err && err.code !== 'validation_failed' && html`<${Alert}>${describe(err)}<//>`}
    <//>`;
  }
  return html`<${Dialog} title="Attach a customer" onClose=${onClose}
    footer=${html`<${Button} icon="plus" onClick=${() => { setForm({ ...form, name: /\d/.test(q) ? '' : q }); setAdding(true); }}>New customer<//>`}>
    <${Input} label="Search by name, phone or email" type="search" value=${q} onInput=${setQ} autocomplete="off" autofocus />
    <${ErrorNote} error=${list.error} onRetry=${list.reload} />
    <ul class="pick-list">
      ${!list.data && !list.error && html`<li><${Skeleton} rows=${3} /></li>`}
      ${list.data && items.length === 0 && html`<li class="pick-empty">No customers found${q ? ` for “${q}”` : ''}.</li>`}
      ${items.map((c) => html`<li key=${c.id}><button type="button" class="pick" onClick=${() => { rememberCustomer(c); onPick(c); }}>
        <span class="avatar">${initials(c.name)}</span>
        <span class="pick-text"><strong>${c.name}</strong><small>${[c.phone, c.email].filter(Boolean).join(' · ') || 'No contact details'}</small></span>
        <span class="pick-points">${plural(c.points, 'pt', 'pts')}</span>
      </button></li>`)}
    </ul>
  <//>`;
}

function Receipt({ order: initial, onClose }) {
  const [order, setOrder] = useState(initial);
  const [customer, setCustomer] = useState(null);
  const [pollErr, setPollErr] = useState(null);

  useEffect(() => {
    if (order.status !== 'pending') return undefined;
    let stop = false;
    const t = setTimeout(async () => {
      try {
        const o = await get(`/orders/${encodeURIComponent(order.id)}`);
        if (!stop) { setOrder(o); setPollErr(null); }
      } catch (e) {
        if (!stop) { setPollErr(e); setOrder((o) => ({ ...o })); }
      }
    }, PENDING_POLL_MS);
    return () => { stop = true; clearTimeout(t); };
  }, [order]);

  useEffect(() => {
    if (!order.customer_id || order.status === 'pending') return;
    get(`/customers/${encodeURIComponent(order.customer_id)}`).then((c) => { rememberCustomer(c); setCustomer(c); }).catch(() => {});
  }, [order.customer_id, order.status]);

  const st = order.status;
  const head = {
    confirmed: { icon: 'check', cls: 'ok', title: 'Order placed', sub: 'Confirmed and taken from stock' },
    pending: { icon: 'clock', cls: 'pending', title: 'Waiting for confirmation…', sub: 'The order has been received and is being confirmed. Don\u2019t hand over until it is confirmed.' },
    failed: { icon: 'alert', cls: 'failed', title: 'Order failed', sub: order.failure_reason || 'The order could not be completed.' },
    cancelled: { icon: 'x', cls: 'failed', title: 'Order cancelled', sub: '' },
  }[st] || { icon: 'receipt', cls: '', title: 'Order', sub: '' };

  return html`<${Dialog} title="Receipt" onClose=${onClose}
    footer=${html`
      <a class="btn btn-secondary" href=${'#/orders/' + encodeURIComponent(order.id)}>View order</a>
      <${Button} kind="primary" size="lg" onClick=${onClose} autofocus data-testid="new-sale">New sale<//>`}>
    <div class="receipt" data-testid="receipt" data-status=${st}>
      <div class=${`receipt-head ${head.cls}`}>
        <span class="receipt-icon">${st === 'pending' ? html`<span class="spinner big"></span>` : html`<${Icon} name=${head.icon} size=${32} />`}</span>
        <div><h3 data-testid="receipt-title">${head.title}</h3>${head.sub && html`<p>${head.sub}</p>`}</div>
      </div>
      ${pollErr && html`<p class="small muted">Still checking… (${describe(pollErr)})</p>`}
      <dl class="receipt-meta">
        <div><dt>Order</dt><dd>${orderNo(order.id)}</dd></div>
        <div><dt>Time</dt><dd>${when(order.created_at)}</dd></div>
        ${order.customer_id && html`<div><dt>Customer</dt><dd>${customer ? customer.name : '…'}</dd></div>`}
        <div><dt>Status</dt><dd><${StatusBadge} status=${st} label=${capitalise(st)} /></dd></div>
      </dl>
      <table class="receipt-lines">
        <tbody>
          ${order.lines.map((l) => html`<tr><td class="q">${l.quantity}×</td><td>${l.name}</td><td class="num">${money(l.unit_price * l.quantity)}</td></tr>`)}
        </tbody>
        <tfoot><tr><td></td><th scope="row">Total</th><td class="num"><strong data-testid="receipt-total">${money(order.total)}</strong></td></tr></tfoot>
      </table>
      ${order.customer_id && st === 'confirmed' && html`<p class="receipt-points" data-testid="receipt-points"><${Icon} name="star" size=${18} />
        <span><strong>${plural(order.points, 'point', 'points')} earned</strong>${customer ? ` · ${customer.name} now has ${plural(customer.points, 'point', 'points')}` : ''}</span></p>`}
    </div>
  <//>`;
}
