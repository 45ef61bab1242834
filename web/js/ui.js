// Shared building blocks so every page speaks the same visual language.
import { html, useState, useEffect, useRef, useCallback } from './lib.js';
import { Icon } from './icons.js';
import { describe } from './api.js';
import { state, subscribe } from './state.js';

let uid = 0;
export function useId(prefix = 'f') {
  const ref = useRef(null);
  if (!ref.current) ref.current = `${prefix}-${++uid}`;
  return ref.current;
}

/** Re-renders when the shared app state changes. */
export function useAppState() {
  const [, force] = useState(0);
  useEffect(() => subscribe(() => force((n) => n + 1)), []);
  return state;
}

/**
 * Loads data for a page. Keeps showing the last data while reloading, so nothing blanks out,
 * and reloads by itself when the connection comes back.
 */
export function useLoad(loader, deps = [], { refreshMs = 0 } = {}) {
  const [s, set] = useState({ data: undefined, error: null, loading: true });
  const seq = useRef(0);
  const online = useAppState().online;
  const reload = useCallback(async () => {
    const my = ++seq.current;
    set((p) => ({ ...p, loading: true }));
    try {
      const data = await loader();
      if (my === seq.current) set({ data, error: null, loading: false });
    } catch (error) {
      if (my === seq.current) set((p) => ({ data: p.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => { reload(); }, [reload, online]);
  // Other tills change the same shop: refresh now and then while the page is open and visible.
  useEffect(() => {
    if (!refreshMs) return undefined;
    const t = setInterval(() => { if (document.visibilityState === 'visible') reload(); }, refreshMs);
    return () => clearInterval(t);
  }, [reload, refreshMs]);
  return { ...s, reload, setData: (fn) => set((p) => ({ ...p, data: typeof fn === 'function' ? fn(p.data) : fn })) };
}

export function PageHeader({ title, sub, back, children }) {
  return html`<header class="page-head">
    <div class="page-title">
      ${back && html`<a class="back" href=${back} aria-label="Back"><${Icon} name="back" /></a>`}
      <div>
        <h1>${title}</h1>
        ${sub && html`<p class="sub">${sub}</p>`}
      </div>
    </div>
    ${children && html`<div class="page-actions">${children}</div>`}
  </header>`;
}

export function Button({ kind = 'secondary', size, icon, busy, disabled, type = 'button', onClick, children, label, class: cls = '', ...rest }) {
  return html`<button type=${type} class=${`btn btn-${kind} ${size ? 'btn-' + size : ''} ${busy ? 'is-busy' : ''} ${cls}`}
    disabled=${disabled || busy} aria-busy=${busy ? 'true' : undefined} onClick=${onClick} aria-label=${label} ...${rest}>
    ${busy ? html`<span class="spinner" aria-hidden="true"></span>` : icon && html`<${Icon} name=${icon} size=${20} />`}
    ${children && html`<span>${children}</span>`}
  </button>`;
}

export function Field({ label, error, hint, id, children, class: cls = '' }) {
  return html`<div class=${`field ${error ? 'has-error' : ''} ${cls}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${error ? html`<p class="field-error" id=${id + '-err'} role="alert">${error}</p>` : hint && html`<p class="hint" id=${id + '-hint'}>${hint}</p>`}
  </div>`;
}

/** A labelled text input in one line. */
export function Input({ label, error, hint, value, onInput, type = 'text', class: cls, inputRef, suffix, prefix, ...rest }) {
  const id = useId('in');
  return html`<${Field} label=${label} error=${error} hint=${hint} id=${id} class=${cls}>
    <div class=${`input-wrap ${prefix ? 'has-prefix' : ''} ${suffix ? 'has-suffix' : ''}`}>
      ${prefix && html`<span class="affix prefix" aria-hidden="true">${prefix}</span>`}
      <input id=${id} type=${type} value=${value} ref=${inputRef}
        aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? id + '-err' : hint ? id + '-hint' : undefined}
        onInput=${(e) => onInput && onInput(e.currentTarget.value)} ...${rest} />
      ${suffix && html`<span class="affix suffix" aria-hidden="true">${suffix}</span>`}
    </div>
  <//>`;
}

export function Select({ label, error, hint, value, onChange, options, class: cls, ...rest }) {
  const id = useId('sel');
  return html`<${Field} label=${label} error=${error} hint=${hint} id=${id} class=${cls}>
    <select id=${id} value=${value} aria-invalid=${error ? 'true' : undefined}
      onChange=${(e) => onChange(e.currentTarget.value)} ...${rest}>
      ${options.map((o) => html`<option value=${o.value} selected=${o.value === value}>${o.label}</option>`)}
    </select>
  <//>`;
}

export function Toggle({ label, checked, onChange, hint }) {
  const id = useId('tg');
  return html`<div class="toggle-field">
    <input type="checkbox" role="switch" id=${id} class="switch" checked=${checked}
      onChange=${(e) => onChange(e.currentTarget.checked)} />
    <label for=${id}>${label}${hint && html`<span class="hint">${hint}</span>`}</label>
  </div>`;
}

export function Badge({ tone = 'neutral', children }) {
  return html`<span class=${`badge badge-${tone}`}>${children}</span>`;
}

const STATUS_TONE = { pending: 'warn', confirmed: 'ok', failed: 'danger', cancelled: 'neutral' };
export function StatusBadge({ status, label }) {
  return html`<${Badge} tone=${STATUS_TONE[status] || 'neutral'}>${label || status}<//>`;
}

export function Alert({ tone = 'danger', title, children, action }) {
  return html`<div class=${`alert alert-${tone}`} role=${tone === 'danger' ? 'alert' : 'status'}>
    <${Icon} name=${tone === 'ok' ? 'check' : 'alert'} />
    <div class="alert-body">
      ${title && html`<strong>${title}</strong>`}
      ${children && html`<div>${children}</div>`}
    </div>
    ${action}
  </div>`;
}

export function ErrorNote({ error, onRetry }) {
  if (!error) return null;
  return html`<${Alert} tone="danger" title=${error.network ? 'Offline' : 'Could not load'}
    action=${onRetry && html`<${Button} size="sm" icon="refresh" onClick=${onRetry}>Try again<//>`}>
    ${describe(error)}
  <//>`;
}

export function Empty({ icon = 'search', title, children }) {
  return html`<div class="empty">
    <div class="empty-icon"><${Icon} name=${icon} size=${28} /></div>
    <p class="empty-title">${title}</p>
    ${children && html`<p class="empty-text">${children}</p>`}
  </div>`;
}

export function Skeleton({ rows = 4 }) {
  return html`<div class="skeleton" aria-busy="true" aria-label="Loading">
    ${Array.from({ length: rows }, () => html`<div class="sk-row"></div>`)}
  </div>`;
}

/** A modal dialog on the native <dialog>: focus is trapped, Escape closes. */
export function Dialog({ title, onClose, children, footer, wide, onSubmit }) {
  const ref = useRef(null);
  const titleId = useId('dlg');
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const first = d && d.querySelector('[autofocus], input:not([type=hidden]), select, textarea');
    if (first) first.focus();
    return () => { if (d && d.open) d.close(); };
  }, []);
  const body = html`
    <header class="dialog-head">
      <h2 id=${titleId}>${title}</h2>
      <button type="button" class="icon-btn" aria-label="Close" onClick=${onClose}><${Icon} name="x" /></button>
    </header>
    <div class="dialog-body">${children}</div>
    ${footer && html`<footer class="dialog-foot">${footer}</footer>`}`;
  return html`<dialog ref=${ref} class=${`dialog ${wide ? 'dialog-wide' : ''}`} aria-labelledby=${titleId}
    onCancel=${(e) => { e.preventDefault(); onClose(); }}
    onClick=${(e) => { if (e.target === ref.current) onClose(); }}>
    ${onSubmit
      ? html`<form class="dialog-inner" novalidate onSubmit=${(e) => { e.preventDefault(); onSubmit(); }}>${body}</form>`
      : html`<div class="dialog-inner">${body}</div>`}
  </dialog>`;
}

/** "Are you sure?" with the consequence spelled out. */
export function Confirm({ title, children, confirmLabel, tone = 'danger', busy, error, onConfirm, onClose }) {
  return html`<${Dialog} title=${title} onClose=${onClose}
    footer=${html`
      <${Button} onClick=${onClose} disabled=${busy}>Keep it<//>
      <${Button} kind=${tone} busy=${busy} onClick=${onConfirm}>${confirmLabel}<//>`}>
    ${children}
    ${error && html`<${Alert}>${describe(error)}<//>`}
  <//>`;
}

export function Segmented({ label, value, options, onChange }) {
  return html`<div class="segmented" role="radiogroup" aria-label=${label}>
    ${options.map((o) => html`<button type="button" role="radio" aria-checked=${o.value === value ? 'true' : 'false'}
      class=${o.value === value ? 'is-on' : ''} onClick=${() => onChange(o.value)}>
      ${o.label}${o.count != null && html`<span class="seg-count">${o.count}</span>`}
    </button>`)}
  </div>`;
}

export function Stat({ label, value, tone }) {
  return html`<div class=${`stat ${tone ? 'stat-' + tone : ''}`}>
    <span class="stat-label">${label}</span>
    <span class="stat-value">${value}</span>
  </div>`;
}

/** Debounced value, for search boxes. */
export function useDebounced(value, ms = 250) {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}
