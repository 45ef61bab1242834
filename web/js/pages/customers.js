import { html, useState } from '../lib.js';
import { Icon } from '../icons.js';
import { get, post, patch, call, describe, download } from '../api.js';
import { rememberCustomer } from '../catalog.js';
import { money, when, dateOnly, orderNo, plural, num, STATUS_LABEL } from '../format.js';
import { useLoad, PageHeader, Button, ErrorNote, Empty, Skeleton, Badge, Dialog, Input, Alert, Confirm, Stat, StatusBadge, useDebounced } from '../ui.js';
import { go } from '../router.js';
import { toast } from '../state.js';
import { initials, isBlank, fileSlug, looksLikeEmail } from '../text.js';

export function CustomersPage() {
  const [q, setQ] = useState('');
  const dq = useDebounced(q.trim(), 250);
  const data = useLoad(() => get('/customers', { q: dq || undefined, limit: 100 }), [dq]);
  const [creating, setCreating] = useState(false);
  const [more, setMore] = useState({ busy: false, err: null });
  const items = data.data?.items || [];

  const loadMore = async () => {
    setMore({ busy: true, err: null });
    try {
      const page = await get('/customers', { q: dq || undefined, limit: 100, cursor: data.data.next_cursor });
      data.setData((d) => ({ items: [...d.items, ...page.items], next_cursor: page.next_cursor }));
      setMore({ busy: false, err: null });
    } catch (e) { setMore({ busy: false, err: e }); }
  };

  return html`<div class="page">
    <${PageHeader} title="Customers" sub="Loyalty members and their points">
      <${Button} kind="primary" icon="plus" onClick=${() => setCreating(true)}>New customer<//>
    <//>
    <div class="search-bar">
      <${Icon} name="search" />
      <label class="sr" for="cust-q">Search customers</label>
      <input id="cust-q" type="search" placeholder="Search by name, phone or email" value=${q}
        onInput=${(e) => setQ(e.currentTarget.value)} autocomplete="off" />
      ${data.loading && data.data && html`<span class="spinner muted"></span>`}
    </div>
    <${ErrorNote} error=${data.error} onRetry=${data.reload} />
    ${!data.data && !data.error && html`<${Skeleton} rows=${5} />`}
    ${data.data && items.length === 0 && html`<${Empty} icon="customers" title=${dq ? `No customers match “${dq}”` : 'No customers yet'}>
      ${dq ? 'Check the spelling or add them as a new customer.' : 'Add customers to give them loyalty points.'}<//>`}
    ${items.length > 0 && html`<div class="card list-card">
      <ul class="people" data-testid="customer-list">
        ${items.map((c) => html`<li key=${c.id}><a class="person" href=${'#/customers/' + encodeURIComponent(c.id)} onClick=${() => rememberCustomer(c)}>
          <span class=${`avatar ${c.anonymised ? 'anon' : ''}`}>${c.anonymised ? '—' : initials(c.name)}</span>
          <span class="person-text"><strong>${c.name}</strong>
            <small>${c.anonymised ? 'Personal data removed' : [c.phone, c.email].filter(Boolean).join(' · ') || 'No contact details'}</small></span>
          <span class="person-points"><strong>${num(c.points)}</strong><small>points</small></span>
          <${Icon} name="chevron" size=${18} />
        </a></li>`)}
      </ul>
    </div>`}
    ${data.data?.next_cursor && html`<div class="more"><${Button} busy=${more.busy} onClick=${loadMore}>Show more<//></div>`}
    ${more.err && html`<${ErrorNote} error=${more.err} />`}
    ${creating && html`<${CustomerDialog} onClose=${() => setCreating(false)}
      onDone=${(c) => { setCreating(false); rememberCustomer(c); go('/customers/' + encodeURIComponent(c.id)); }} />`}
  </div>`;
}

function CustomerDialog({ customer, onClose, onDone }) {
  const [f, setF] = useState({ name: customer?.name || '', phone: customer?.phone || '', email: customer?.email || '' });
  const [errs, setErrs] = useState({});
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const submit = async () => {
    const e = {};
    if (isBlank(f.name)) e.name = 'Enter a name.';
    if (!looksLikeEmail(f.email)) e.email = 'That does not look like an email address.';
    setErrs(e);
    if (Object.keys(e).length) return;
    setBusy(true); setErr(null);
    try {
      let c;
      if (customer) {
        c = await patch(`/customers/${encodeURIComponent(customer.id)}`, { name: f.name.trim(), phone: f.phone.trim(), email: f.email.trim() });
      } else {
        const body = { name: f.name.trim() };
        if (f.phone.trim()) body.phone = f.phone.trim();
        if (f.email.trim()) body.email = f.email.trim();
        c = await post('/customers', body);
      }
      toast(customer ? 'Details saved' : `${c.name} added`);
      onDone(c);
    } catch (x) {
      if (x.code === 'validation_failed') setErrs(x.fieldErrors());
      setErr(x);
    } finally { setBusy(false); }
  };
  return html`<${Dialog} title=${customer ? 'Edit details' : 'New customer'} onClose=${onClose} onSubmit=${submit}
    footer=${html`<${Button} onClick=${onClose} disabled=${busy}>Cancel<//><${Button} kind="primary" type="submit" busy=${busy}>${customer ? 'Save' : 'Add customer'}<//>`}>
    <${Input} label="Name" value=${f.name} onInput=${(v) => setF({ ...f, name: v })} error=${errs.name} autocomplete="off" autofocus />
    <${Input} label="Phone (optional)" type="tel" value=${f.phone} onInput=${(v) => setF({ ...f, phone: v })} error=${errs.phone} autocomplete="off" />
    <${Input} label="Email (optional)" type="email" value=${f.email} onInput=${(v) => setF({ ...f, email: v })} error=${errs.email} autocomplete="off" />
    ${err && err.code !== 'validation_failed' && html`<${Alert}>${describe(err)}<//>`}
  <//>`;
}

export function CustomerPage({ id }) {
  const cust = useLoad(() => get(`/customers/${encodeURIComponent(id)}`), [id]);
  const orders = useLoad(() => get(`/customers/${encodeURIComponent(id)}/orders`, { limit: 50 }), [id]);
  const [editing, setEditing] = useState(false);
  const [anon, setAnon] = useState({ open: false, busy: false, err: null });
  // 202: the erasure is recorded and finishes by itself (the customer list is down, or
  // orders of theirs are being completed); what the server said about it.
  const [erasing, setErasing] = useState(null);
  const [exporting, setExporting] = useState(false);
  const c = cust.data;
  const list = orders.data?.items || [];
  const spent = list.filter((o) => o.status === 'confirmed').reduce((s, o) => s + o.total, 0);

  const exportData = async () => {
    setExporting(true);
    try {
      await download(`/customers/${encodeURIComponent(id)}/export`, null, `${fileSlug(c.name, 'customer')}-export.json`);
      toast('Export downloaded');
    } catch (e) {
      toast(describe(e), 'error');
    } finally { setExporting(false); }
  };
  const anonymise = async () => {
    setAnon({ open: true, busy: true, err: null });
    try {
      const { status, data } = await call('DELETE', `/customers/${encodeURIComponent(id)}`);
      setAnon({ open: false, busy: false, err: null });
      if (status === 202) {
        setErasing(data.detail);
        toast('Anonymisation recorded');
        cust.reload();
        return;
      }
      cust.setData(data);
      rememberCustomer(data);
      setErasing(null);
      toast('Personal data removed');
    } catch (e) { setAnon({ open: true, busy: false, err: e }); }
  };

  return html`<div class="page">
    <${PageHeader} back="#/customers" title=${c ? c.name : 'Customer'} sub=${c ? (c.anonymised ? 'Personal data removed' : `Customer since ${dateOnly(c.created_at)}`) : ''}>
      ${c && !c.anonymised && html`
        <${Button} icon="edit" onClick=${() => setEditing(true)}>Edit<//>
        <${Button} icon="download" busy=${exporting} onClick=${exportData} data-testid="export">Export data<//>
        <${Button} kind="danger-ghost" icon="trash" onClick=${() => setAnon({ open: true, busy: false, err: null })}>Anonymise<//>`}
    <//>
    ${erasing && !c?.anonymised && html`<${Alert} tone="info" title="Anonymisation recorded">${erasing}<//>`}
    <${ErrorNote} error=${cust.error} onRetry=${cust.reload} />
    ${!c && !cust.error && html`<${Skeleton} rows=${3} />`}
    ${c && html`
      ${c.anonymised && html`<${Alert} tone="info" title="This customer was anonymised">Their name and contact details were removed. Sales records are kept for the accounts.<//>`}
      <div class="stats">
        <${Stat} label="Points" value=${html`<span data-testid="customer-points">${num(c.points)}</span>`} tone="brand" />
        <${Stat} label="Orders" value=${num(list.length) + (orders.data?.next_cursor ? '+' : '')} />
        <${Stat} label="Spent" value=${money(spent)} />
      </div>
      ${!c.anonymised && html`<div class="card"><dl class="facts">
        <div><dt>Phone</dt><dd>${c.phone || html`<span class="muted">Not given</span>`}</dd></div>
        <div><dt>Email</dt><dd>${c.email || html`<span class="muted">Not given</span>`}</dd></div>
      </dl></div>`}
    `}
    <h2 class="section-title">Order history</h2>
    <${ErrorNote} error=${orders.error} onRetry=${orders.reload} />
    ${!orders.data && !orders.error && html`<${Skeleton} rows=${3} />`}
    ${orders.data && list.length === 0 && html`<${Empty} icon="orders" title="No orders yet">Attach this customer to a sale to collect points.<//>`}
    ${list.length > 0 && html`<div class="card list-card"><table class="table rows-link">
      <thead><tr><th>When</th><th>Order</th><th>Items</th><th>Status</th><th class="num">Points</th><th class="num">Total</th></tr></thead>
      <tbody>${list.map((o) => html`<tr key=${o.id} onClick=${() => go('/orders/' + encodeURIComponent(o.id))}>
        <td class="nowrap">${when(o.created_at)}</td>
        <td class="mono"><a href=${'#/orders/' + encodeURIComponent(o.id)}>${orderNo(o.id)}</a></td>
        <td>${o.lines.map((l) => `${l.quantity}× ${l.name}`).join(', ')}</td>
        <td><${StatusBadge} status=${o.status} label=${STATUS_LABEL[o.status]} /></td>
        <td class="num">${o.status === 'confirmed' ? `+${num(o.points)}` : '—'}</td>
        <td class="num">${money(o.total)}</td>
      </tr>`)}</tbody>
    </table></div>`}
    ${editing && c && html`<${CustomerDialog} customer=${c} onClose=${() => setEditing(false)}
      onDone=${(u) => { setEditing(false); cust.setData(u); rememberCustomer(u); }} />`}
    ${anon.open && c && html`<${Confirm} title=${`Anonymise ${c.name}?`} confirmLabel="Anonymise" busy=${anon.busy} error=${anon.err}
      onConfirm=${anonymise} onClose=${() => setAnon({ open: false, busy: false, err: null })}>
      <p>Their name, phone and email are erased for good, and their ${c.points} loyalty points are forfeited. Past orders stay in the accounts without the person attached. This cannot be undone.</p>
      <p class="muted">Tip: use <strong>Export data</strong> first if they asked for a copy.</p>
    <//>`}
  </div>`;
}
