import { html, render, useEffect, useState } from './lib.js';
import { Icon, Logo } from './icons.js';
import { useRoute } from './router.js';
import { state, setState } from './state.js';
import { call, setToken, getToken, describe } from './api.js';
import { RETRY_MS } from './config.js';
import { useAppState, Button, Input, Alert } from './ui.js';
import { capitalise } from './text.js';
import { SellPage } from './pages/sell.js';
import { OrdersPage, OrderPage } from './pages/orders.js';
import { StockPage, IngredientPage } from './pages/stock.js';
import { ProductsPage } from './pages/products.js';
import { CustomersPage, CustomerPage } from './pages/customers.js';
import { ReportsPage } from './pages/reports.js';
import { SystemPage } from './pages/system.js';

const NAV = [
  { page: 'sell', label: 'Sell', icon: 'sell' },
  { page: 'orders', label: 'Orders', icon: 'orders' },
  { page: 'stock', label: 'Stock', icon: 'stock' },
  { page: 'products', label: 'Products', icon: 'products' },
  { page: 'customers', label: 'Customers', icon: 'customers' },
  { page: 'reports', label: 'Reports', icon: 'reports' },
  { page: 'system', label: 'System', icon: 'system' },
];

function Page({ route }) {
  switch (route.page) {
    case 'sell': return html`<${SellPage} />`;
    case 'orders': return route.id ? html`<${OrderPage} id=${route.id} />` : html`<${OrdersPage} query=${route.query} />`;
    case 'stock': return route.id ? html`<${IngredientPage} id=${route.id} />` : html`<${StockPage} />`;
    case 'products': return html`<${ProductsPage} />`;
    case 'customers': return route.id ? html`<${CustomerPage} id=${route.id} />` : html`<${CustomersPage} />`;
    case 'reports': return html`<${ReportsPage} />`;
    case 'system': return html`<${SystemPage} />`;
    default: return html`<div class="page"><h1>Not found</h1><p><a href="#/sell">Back to selling</a></p></div>`;
  }
}

// ---- connection: poll /health while the server is unreachable, and now and then otherwise.
async function checkHealth() {
  try {
    const r = await call('GET', '/health', { quiet: true });
    const wasOffline = state.offline;
    setState({ health: r.data, offline: false, online: wasOffline ? state.online + 1 : state.online });
    return true;
  } catch (e) {
    if (e.network) {
      setState({ offline: true });
      return false;
    }
    // The server answered (503 with a body, 401, ...): it is reachable.
    const wasOffline = state.offline;
    const patch = { offline: false, online: wasOffline ? state.online + 1 : state.online };
    if (e.status === 503) {
      patch.health = e.body && Array.isArray(e.body.dependencies)
        ? e.body
        : { ok: false, mode: state.health?.mode, dependencies: state.health?.dependencies || [], detail: e.detail };
    }
    setState(patch);
    return true;
  }
}

function useHealthPoll() {
  const s = useAppState();
  useEffect(() => {
    let stop = false;
    let timer;
    const loop = async () => {
      if (stop) return;
      await checkHealth();
      if (stop) return;
      timer = setTimeout(loop, state.offline ? RETRY_MS : 30000);
    };
    loop();
    return () => { stop = true; clearTimeout(timer); };
  }, [s.offline]);
}

function Banner() {
  const s = useAppState();
  const [busy, setBusy] = useState(false);
  if (s.offline) {
    return html`<div class="banner banner-offline" role="alert" data-testid="offline-banner">
      <${Icon} name="cloudOff" />
      <div class="banner-text">
        <strong>No connection to the shop server.</strong>
        <span> Sales can't be placed and stock, orders and reports can't load or save until it's back. Retrying automatically…</span>
      </div>
      <${Button} size="sm" busy=${busy} onClick=${async () => { setBusy(true); await checkHealth(); setBusy(false); }}>Retry now<//>
    </div>`;
  }
  const h = s.health;
  if (h && h.ok === false) {
    const bad = (h.dependencies || []).filter((d) => !d.ok);
    const degrades = [...new Set(bad.flatMap((d) => d.degrades || []))];
    return html`<div class="banner banner-degraded" role="status" data-testid="degraded-banner">
      <${Icon} name="alert" />
      <div class="banner-text">
        <strong>${bad.length ? `${bad.map((d) => titleCase(d.name)).join(', ')} unavailable.` : 'The shop server reports a problem.'}</strong>
        <span> ${degrades.length ? `Not working right now: ${degrades.join(', ')}.` : h.detail || ''} </span>
        <a href="#/system">Details</a>
      </div>
    </div>`;
  }
  return null;
}

export function titleCase(s) {
  return capitalise(String(s || '').replace(/[_-]+/g, ' '));
}

function Toasts() {
  const s = useAppState();
  return html`<div class="toasts" aria-live="polite">
    ${s.toasts.map((t) => html`<div key=${t.id} class=${`toast toast-${t.kind}`}>
      <${Icon} name=${t.kind === 'error' ? 'alert' : 'check'} size=${20} /><span>${t.text}</span></div>`)}
  </div>`;
}

function TokenScreen() {
  const s = useAppState();
  const [token, set] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    if (!token.trim()) { setError('Enter the access token.'); return; }
    setBusy(true);
    setError('');
    const old = getToken();
    setToken(token.trim());
    try {
      await call('GET', '/products', { query: { limit: 1 } });
      setState({ auth: { needed: false, had: true }, online: state.online + 1 });
    } catch (err) {
      if (err.code === 'unauthorized') {
        setToken(old);
        setError('That token was not accepted. Check it and try again.');
        setState({ auth: { needed: true, had: !!old } });
      } else {
        setError(describe(err));
      }
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="gate">
    <form class="gate-card" onSubmit=${submit} novalidate>
      <${Logo} size=${56} />
      <h1>Lemonade</h1>
      <p class="sub">${s.auth.had ? 'The saved access token is no longer accepted.' : 'This till needs the shop\u2019s access token to connect.'}${' '}
        Ask the owner for it; it is saved on this device.</p>
      <${Input} label="Access token" type="password" value=${token} onInput=${set} error=${error}
        autocomplete="current-password" autofocus />
      <${Button} kind="primary" size="lg" type="submit" busy=${busy} icon="lock">Connect<//>
    </form>
  </div>`;
}

function App() {
  const route = useRoute();
  const s = useAppState();
  useHealthPoll();
  useEffect(() => {
    const main = document.getElementById('main');
    if (main) main.scrollTop = 0;
  }, [route.page, route.id]);
  if (s.auth.needed) return html`<${TokenScreen} />`;
  return html`<div class="app">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <nav class="rail" aria-label="Main">
      <div class="brand"><${Logo} size=${34} /><span class="brand-name">Lemonade</span></div>
      <ul>
        ${NAV.map((n) => html`<li><a href=${'#/' + n.page} class=${route.page === n.page ? 'is-active' : ''}
          aria-current=${route.page === n.page ? 'page' : undefined}>
          <${Icon} name=${n.icon} size=${24} /><span>${n.label}</span></a></li>`)}
      </ul>
      <div class=${`conn ${s.offline ? 'is-off' : s.health && s.health.ok === false ? 'is-warn' : 'is-on'}`} title="Server connection">
        <span class="dot"></span><span class="conn-label">${s.offline ? 'Offline' : s.health && s.health.ok === false ? 'Degraded' : 'Online'}</span>
      </div>
    </nav>
    <main id="main" tabindex="-1">
      <${Banner} />
      <${Page} route=${route} key=${route.page + '/' + (route.id || '')} />
    </main>
    <${Toasts} />
  </div>`;
}

render(html`<${App} />`, document.getElementById('root'));
