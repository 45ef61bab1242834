import { html, useState } from '../lib.js';
import { Icon } from '../icons.js';
import { get, post, describe } from '../api.js';
import { loadCatalog, invalidateCatalog } from '../catalog.js';
import { qty, signedQty, num, when, unitLabel, unitName, parseWhole, REASON_LABEL, orderNo } from '../format.js';
import { useLoad, PageHeader, Button, ErrorNote, Empty, Skeleton, Badge, Dialog, Input, Select, Alert, Segmented, Stat } from '../ui.js';
import { go } from '../router.js';
import { toast } from '../state.js';
import { isBlank } from '../text.js';

export function StockPage() {
  const data = useLoad(() => loadCatalog({ force: true }));
  const [action, setAction] = useState(null); // { kind, ingredient }
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState('all');
  const all = data.data?.ingredients || [];
  const low = all.filter((i) => i.low);
  const list = filter === 'low' ? low : all;
  const usedBy = (id) => (data.data?.products || []).filter((p) => p.recipe.some((r) => r.ingredient_id === id)).map((p) => p.name);

  const done = (ing) => {
    data.setData((d) => d && { ...d, ingredients: d.ingredients.map((i) => (i.id === ing.id ? ing : i)) });
    invalidateCatalog();
    data.reload();
  };

  return html`<div class="page">
    <${PageHeader} title="Stock" sub="Ingredients on hand, counted in their own unit">
      <${Button} kind="primary" icon="plus" onClick=${() => setCreating(true)}>New ingredient<//>
    <//>
    <${ErrorNote} error=${data.error} onRetry=${data.reload} />
    ${data.data && low.length > 0 && html`<${Alert} tone="warn" title=${`${low.length === 1 ? '1 ingredient is' : `${low.length} ingredients are`} running low`}>
      ${low.map((i) => i.name).join(', ')} ${low.length === 1 ? 'is' : 'are'} at or below the reorder level. Restock soon.<//>`}
    ${data.data && all.length > 0 && html`<${Segmented} label="Show" value=${filter} onChange=${setFilter}
      options=${[{ value: 'all', label: 'All', count: all.length }, { value: 'low', label: 'Low stock', count: low.length }]} />`}
    ${!data.data && !data.error && html`<${Skeleton} rows=${5} />`}
    ${data.data && all.length === 0 && html`<${Empty} icon="stock" title="No ingredients yet">Add the ingredients your products are made of.<//>`}
    ${list.length > 0 && html`<div class="card list-card">
      <table class="table stock-table" data-testid="stock-table">
        <thead><tr><th>Ingredient</th><th class="num">On hand</th><th class="num hide-sm">Reorder at</th><th class="actions-col"><span class="sr">Adjust</span></th></tr></thead>
        <tbody>
          ${list.map((i) => html`<tr key=${i.id} data-testid="ingredient-row" data-name=${i.name} class=${i.low ? 'is-low' : ''}>
            <td>
              <a class="row-title" href=${'#/stock/' + encodeURIComponent(i.id)}>${i.name}</a>
              <span class="row-sub">${usedBy(i.id).length ? `Used in ${usedBy(i.id).join(', ')}` : 'Not used in any product'}</span>
            </td>
            <td class="num onhand-cell">
              ${i.low && html`<${Badge} tone="warn"><${Icon} name="alert" size=${14} /> Low<//> `}<span class="onhand" data-testid="on-hand">${qty(i.on_hand, i.unit)}</span>
              <${Meter} value=${i.on_hand} mark=${i.reorder_level} low=${i.low} /></td>
            <td class="num hide-sm muted">${qty(i.reorder_level, i.unit)}</td>
            <td class="actions-col">
              <div class="row-actions">
                <${Button} size="sm" icon="restock" onClick=${() => setAction({ kind: 'restock', ingredient: i })} aria-label=${`Restock ${i.name}`}>Restock<//>
                <${Button} size="sm" icon="waste" onClick=${() => setAction({ kind: 'waste', ingredient: i })} aria-label=${`Record waste of ${i.name}`}>Waste<//>
                <${Button} size="sm" icon="count" onClick=${() => setAction({ kind: 'count', ingredient: i })} aria-label=${`Count ${i.name}`}>Count<//>
              </div>
            </td>
          </tr>`)}
        </tbody>
      </table>
    </div>`}
    ${action && html`<${AdjustDialog} ...${action} onClose=${() => setAction(null)} onDone=${(ing) => { done(ing); }} />`}
    ${creating && html`<${NewIngredientDialog} onClose=${() => setCreating(false)} onDone=${() => { setCreating(false); invalidateCatalog(); data.reload(); }} />`}
  </div>`;
}

function Meter({ value, mark, low }) {
  const max = Math.max(value, mark * 3, 1);
  const pct = Math.min(100, (value / max) * 100);
  const m = Math.min(100, (mark / max) * 100);
  return html`<div class=${`meter ${low ? 'is-low' : ''}`} aria-hidden="true">
    <span class="meter-fill" style=${`width:${pct}%`}></span>
    ${mark > 0 && html`<span class="meter-mark" style=${`left:${m}%`}></span>`}
  </div>`;
}

const ACTIONS = {
  restock: { title: 'Restock', verb: 'Add to stock', field: 'Quantity received', note: 'Supplier, delivery note… (optional)' },
  waste: { title: 'Record waste', verb: 'Record waste', field: 'Quantity thrown away', note: 'Reason, e.g. spoiled, spilled (optional)' },
  count: { title: 'Record a count', verb: 'Save count', field: 'Counted on hand', note: 'Note (optional)' },
};

export function AdjustDialog({ kind, ingredient: i, onClose, onDone }) {
  const a = ACTIONS[kind];
  const [value, setValue] = useState('');
  const [note, setNote] = useState('');
  const [errs, setErrs] = useState({});
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const [result, setResult] = useState(null);
  const n = parseWhole(value);
  const preview = n === null ? null : kind === 'restock' ? i.on_hand + n : kind === 'waste' ? i.on_hand - n : n;

  const submit = async () => {
    if (result) { onClose(); return; }
    const e = {};
    if (n === null) e.value = 'Enter a whole number.';
    else if (kind !== 'count' && n <= 0) e.value = 'Enter more than zero.';
    else if (kind === 'waste' && n > i.on_hand) e.value = `Only ${qty(i.on_hand, i.unit)} on hand.`;
    setErrs(e);
    if (Object.keys(e).length) return;
    setBusy(true); setErr(null);
    try {
      const body = kind === 'count' ? { on_hand: n } : { quantity: n };
      if (note.trim()) body.note = note.trim();
      const r = await post(`/ingredients/${encodeURIComponent(i.id)}/${kind}`, body);
      onDone(r.ingredient);
      if (kind === 'count') {
        setResult(r);
      } else {
        toast(`${i.name}: ${signedQty(r.move.delta, i.unit)}, now ${qty(r.ingredient.on_hand, i.unit)}`);
        onClose();
      }
    } catch (x) {
      if (x.code === 'validation_failed') {
        const f = x.fieldErrors();
        setErrs({ value: f.quantity || f.on_hand, note: f.note });
      }
      setErr(x);
    } finally { setBusy(false); }
  };

  if (result) {
    const d = result.move.delta;
    return html`<${Dialog} title=${`Count saved: ${i.name}`} onClose=${onClose}
      footer=${html`<${Button} kind="primary" onClick=${onClose} autofocus>Done<//>`}>
      <div class="variance" data-testid="variance">
        <${Stat} label="Expected" value=${qty(i.on_hand, i.unit)} />
        <${Stat} label="Counted" value=${qty(result.ingredient.on_hand, i.unit)} />
        <${Stat} label="Variance" value=${signedQty(d, i.unit)} tone=${d < 0 ? 'danger' : d > 0 ? 'ok' : ''} />
      </div>
      <p class="muted">${d === 0 ? 'The count matches the books.' : d < 0 ? `${qty(-d, i.unit)} less than expected has been written off.` : `${qty(d, i.unit)} more than expected has been added.`}</p>
    <//>`;
  }

  return html`<${Dialog} title=${`${a.title}: ${i.name}`} onClose=${onClose} onSubmit=${submit}
    footer=${html`<${Button} onClick=${onClose} disabled=${busy}>Cancel<//><${Button} kind="primary" type="submit" busy=${busy}>${a.verb}<//>`}>
    <p class="muted">On hand now: <strong>${qty(i.on_hand, i.unit)}</strong></p>
    <${Input} label=${`${a.field} (${unitName(i.unit)})`} inputmode="numeric" value=${value} onInput=${setValue}
      suffix=${unitLabel(i.unit)} error=${errs.value} autocomplete="off" autofocus
      hint=${preview !== null && !errs.value ? (kind === 'count' ? `Variance: ${signedQty(n - i.on_hand, i.unit)}` : `After this: ${qty(Math.max(0, preview), i.unit)}`) : ' '} />
    <${Input} label=${a.note} value=${note} onInput=${setNote} error=${errs.note} autocomplete="off" />
    ${err && err.code !== 'validation_failed' && html`<${Alert}>${describe(err)}<//>`}
  <//>`;
}

function NewIngredientDialog({ onClose, onDone }) {
  const [f, setF] = useState({ name: '', unit: 'g', on_hand: '', reorder_level: '' });
  const [errs, setErrs] = useState({});
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const submit = async () => {
    const e = {};
    if (isBlank(f.name)) e.name = 'Enter a name.';
    const oh = f.on_hand.trim() === '' ? 0 : parseWhole(f.on_hand);
    const rl = f.reorder_level.trim() === '' ? 0 : parseWhole(f.reorder_level);
    if (oh === null) e.on_hand = 'Enter a whole number.';
    if (rl === null) e.reorder_level = 'Enter a whole number.';
    setErrs(e);
    if (Object.keys(e).length) return;
    setBusy(true); setErr(null);
    try {
      const ing = await post('/ingredients', { name: f.name.trim(), unit: f.unit, on_hand: oh, reorder_level: rl });
      toast(`${ing.name} added`);
      onDone(ing);
    } catch (x) {
      if (x.code === 'validation_failed') setErrs(x.fieldErrors());
      setErr(x);
    } finally { setBusy(false); }
  };
  const u = unitLabel(f.unit);
  return html`<${Dialog} title="New ingredient" onClose=${onClose} onSubmit=${submit}
    footer=${html`<${Button} onClick=${onClose} disabled=${busy}>Cancel<//><${Button} kind="primary" type="submit" busy=${busy}>Add ingredient<//>`}>
    <${Input} label="Name" value=${f.name} onInput=${(v) => setF({ ...f, name: v })} error=${errs.name} autocomplete="off" autofocus />
    <${Select} label="Counted in" value=${f.unit} onChange=${(v) => setF({ ...f, unit: v })} error=${errs.unit}
      options=${[{ value: 'g', label: 'Grams (g)' }, { value: 'ml', label: 'Millilitres (ml)' }, { value: 'piece', label: 'Pieces' }]} />
    <div class="grid-2">
      <${Input} label="On hand now" inputmode="numeric" value=${f.on_hand} onInput=${(v) => setF({ ...f, on_hand: v })} error=${errs.on_hand} suffix=${u} placeholder="0" />
      <${Input} label="Reorder level" inputmode="numeric" value=${f.reorder_level} onInput=${(v) => setF({ ...f, reorder_level: v })} error=${errs.reorder_level} suffix=${u} placeholder="0" hint="Warn when stock falls to this" />
    </div>
    ${err && err.code !== 'validation_failed' && html`<${Alert}>${describe(err)}<//>`}
  <//>`;
}

export function IngredientPage({ id }) {
  const ing = useLoad(() => get(`/ingredients/${encodeURIComponent(id)}`), [id]);
  const moves = useLoad(() => get('/stock/moves', { ingredient_id: id, limit: 100 }), [id]);
  const [action, setAction] = useState(null);
  const [more, setMore] = useState({ busy: false, err: null });
  const i = ing.data;

  const loadMore = async () => {
    setMore({ busy: true, err: null });
    try {
      const page = await get('/stock/moves', { ingredient_id: id, limit: 100, cursor: moves.data.next_cursor });
      moves.setData((d) => ({ items: [...d.items, ...page.items], next_cursor: page.next_cursor }));
      setMore({ busy: false, err: null });
    } catch (e) { setMore({ busy: false, err: e }); }
  };

  return html`<div class="page">
    <${PageHeader} back="#/stock" title=${i ? i.name : 'Ingredient'} sub=${i ? `Counted in ${unitName(i.unit)}` : ''}>
      ${i && html`
        <${Button} icon="restock" onClick=${() => setAction('restock')}>Restock<//>
        <${Button} icon="waste" onClick=${() => setAction('waste')}>Waste<//>
        <${Button} icon="count" onClick=${() => setAction('count')}>Count<//>`}
    <//>
    <${ErrorNote} error=${ing.error} onRetry=${ing.reload} />
    ${i && html`<div class="stats">
      <${Stat} label="On hand" value=${qty(i.on_hand, i.unit)} tone=${i.low ? 'warn' : ''} />
      <${Stat} label="Reorder level" value=${qty(i.reorder_level, i.unit)} />
      <${Stat} label="Status" value=${i.low ? 'Low — restock' : 'OK'} tone=${i.low ? 'warn' : 'ok'} />
    </div>`}
    <h2 class="section-title">Stock movements</h2>
    <${ErrorNote} error=${moves.error} onRetry=${moves.reload} />
    ${!moves.data && !moves.error && html`<${Skeleton} rows=${4} />`}
    ${moves.data && moves.data.items.length === 0 && html`<${Empty} icon="stock" title="No movements yet" />`}
    ${moves.data && moves.data.items.length > 0 && html`<div class="card list-card">
      <table class="table" data-testid="ledger">
        <thead><tr><th>When</th><th>What</th><th class="num">Change</th><th>Note</th></tr></thead>
        <tbody>${moves.data.items.map((m) => html`<tr key=${m.id}>
          <td class="nowrap">${when(m.created_at)}</td>
          <td><${Badge} tone=${m.reason === 'waste' || m.reason === 'sale' ? 'neutral' : m.reason === 'restock' ? 'ok' : 'info'}>${REASON_LABEL[m.reason] || m.reason}<//>
            ${m.order_id && html` <a class="small" href=${'#/orders/' + encodeURIComponent(m.order_id)}>Order ${orderNo(m.order_id)}</a>`}</td>
          <td class=${`num delta ${m.delta < 0 ? 'neg' : m.delta > 0 ? 'pos' : ''}`}>${i ? signedQty(m.delta, i.unit) : num(m.delta)}</td>
          <td class="muted">${m.note || ''}</td>
        </tr>`)}</tbody>
      </table>
    </div>`}
    ${moves.data?.next_cursor && html`<div class="more"><${Button} busy=${more.busy} onClick=${loadMore}>Show older movements<//></div>`}
    ${more.err && html`<${ErrorNote} error=${more.err} />`}
    ${action && i && html`<${AdjustDialog} kind=${action} ingredient=${i} onClose=${() => setAction(null)}
      onDone=${(x) => { ing.setData(x); invalidateCatalog(); moves.reload(); }} />`}
  </div>`;
}
