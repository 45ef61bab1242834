import { html, useState } from '../lib.js';
import { Icon } from '../icons.js';
import { post, patch, describe } from '../api.js';
import { loadCatalog, invalidateCatalog, stockLimited, soldOut } from '../catalog.js';
import { money, moneyInput, parseMoney, qty, num, unitLabel, parseWhole } from '../format.js';
import { CURRENCY_SYMBOL } from '../config.js';
import { useLoad, PageHeader, Button, ErrorNote, Empty, Skeleton, Badge, Dialog, Input, Select, Alert, Toggle } from '../ui.js';
import { toast } from '../state.js';
import { isBlank, compareText } from '../text.js';

export function ProductsPage() {
  const data = useLoad(() => loadCatalog({ force: true }));
  const [editing, setEditing] = useState(null); // product or 'new'
  const products = data.data?.products || [];
  const ingById = data.data?.ingById || new Map();
  const after = () => { setEditing(null); invalidateCatalog(); data.reload(); };

  return html`<div class="page">
    <${PageHeader} title="Products" sub="What you sell, its price and what goes into one">
      <${Button} kind="primary" icon="plus" onClick=${() => setEditing('new')} disabled=${!data.data}>New product<//>
    <//>
    <${ErrorNote} error=${data.error} onRetry=${data.reload} />
    ${!data.data && !data.error && html`<${Skeleton} rows=${4} />`}
    ${data.data && products.length === 0 && html`<${Empty} icon="products" title="No products yet">Create your first product and its recipe.<//>`}
    <div class="product-grid">
      ${products.map((p) => html`<article key=${p.id} class=${`card product-card ${p.active ? '' : 'is-inactive'}`} data-testid="product-card" data-name=${p.name}>
        <header>
          <h2>${p.name}</h2>
          <span class="price">${money(p.price)}</span>
        </header>
        <div class="pc-meta">
          ${p.active ? html`<${Badge} tone="ok">On sale<//>` : html`<${Badge}>Off sale<//>`}
          <span class=${soldOut(p) ? 'danger-text' : stockLimited(p) && p.can_make <= 5 ? 'warn-text' : 'muted'} data-testid="can-make">${soldOut(p) ? 'Cannot be made now' : stockLimited(p) ? `Can make ${num(p.can_make)}` : 'Not limited by stock'}</span>
        </div>
        <ul class="recipe-list">
          ${p.recipe.length === 0 && html`<li class="muted">No recipe</li>`}
          ${p.recipe.map((r) => {
            const ing = ingById.get(r.ingredient_id);
            return html`<li><span>${ing ? ing.name : 'Unknown ingredient'}</span><span class="muted">${ing ? qty(r.quantity, ing.unit) : num(r.quantity)}</span></li>`;
          })}
        </ul>
        <footer><${Button} size="sm" icon="edit" onClick=${() => setEditing(p)} aria-label=${`Edit ${p.name}`}>Edit<//></footer>
      </article>`)}
    </div>
    ${editing && html`<${ProductDialog} product=${editing === 'new' ? null : editing} ingredients=${data.data.ingredients}
      onClose=${() => setEditing(null)} onDone=${after} />`}
  </div>`;
}

function ProductDialog({ product, ingredients, onClose, onDone }) {
  const [f, setF] = useState(() => ({
    name: product?.name || '',
    price: product ? moneyInput(product.price) : '',
    active: product ? product.active : true,
    recipe: product ? product.recipe.map((r) => ({ ingredient_id: r.ingredient_id, quantity: String(r.quantity) })) : [{ ingredient_id: '', quantity: '' }],
  }));
  const [errs, setErrs] = useState({});
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const ingById = new Map(ingredients.map((i) => [i.id, i]));
  const setRow = (k, patchRow) => setF({ ...f, recipe: f.recipe.map((r, j) => (j === k ? { ...r, ...patchRow } : r)) });

  const submit = async () => {
    const e = {};
    if (isBlank(f.name)) e.name = 'Enter a name.';
    const price = parseMoney(f.price);
    if (price === null) e.price = `Enter a price like 3.50.`;
    // Every row shown is sent: a row left empty is an error to fix or remove, never dropped
    // quietly (a product saved without the recipe its maker meant would never run out).
    // Errors are keyed by the row's place on screen, which is also its place in `recipe`.
    const recipe = [];
    const seen = new Set();
    f.recipe.forEach((r, k) => {
      const q = parseWhole(r.quantity);
      if (!r.ingredient_id) e[`recipe[${k}].ingredient_id`] = r.quantity.trim() ? 'Choose an ingredient.' : 'Choose an ingredient, or remove this row.';
      else if (seen.has(r.ingredient_id)) e[`recipe[${k}].ingredient_id`] = 'Already in the recipe.';
      if (q === null || q <= 0) e[`recipe[${k}].quantity`] = 'Whole number above 0.';
      seen.add(r.ingredient_id);
      recipe.push({ ingredient_id: r.ingredient_id, quantity: q });
    });
    setErrs(e);
    if (Object.keys(e).length) return;
    setBusy(true); setErr(null);
    try {
      const body = { name: f.name.trim(), price, recipe, active: f.active };
      const p = product ? await patch(`/products/${encodeURIComponent(product.id)}`, body) : await post('/products', body);
      toast(product ? `${p.name} saved` : `${p.name} created`);
      onDone(p);
    } catch (x) {
      if (x.code === 'validation_failed') setErrs(x.fieldErrors());
      setErr(x);
    } finally { setBusy(false); }
  };

  const options = [{ value: '', label: 'Choose…' }, ...[...ingredients].sort((a, b) => compareText(a.name, b.name)).map((i) => ({ value: i.id, label: `${i.name} (${unitLabel(i.unit)})` }))];
  return html`<${Dialog} wide title=${product ? `Edit ${product.name}` : 'New product'} onClose=${onClose} onSubmit=${submit}
    footer=${html`<${Button} onClick=${onClose} disabled=${busy}>Cancel<//><${Button} kind="primary" type="submit" busy=${busy}>${product ? 'Save changes' : 'Create product'}<//>`}>
    <div class="grid-2">
      <${Input} label="Name" value=${f.name} onInput=${(v) => setF({ ...f, name: v })} error=${errs.name} autocomplete="off" autofocus />
      <${Input} label="Price" inputmode="decimal" value=${f.price} onInput=${(v) => setF({ ...f, price: v })} error=${errs.price} prefix=${CURRENCY_SYMBOL} placeholder="0.00" />
    </div>
    <${Toggle} label="On sale" hint="Shown on the Sell screen" checked=${f.active} onChange=${(v) => setF({ ...f, active: v })} />
    <fieldset class="recipe-edit">
      <legend>Recipe for one</legend>
      <div class="recipe-head" aria-hidden="true"><span>Ingredient</span><span>Amount</span><span></span></div>
      ${errs.recipe && html`<p class="field-error">${errs.recipe}</p>`}
      ${f.recipe.length === 0 && html`<p class="muted" data-testid="no-recipe">No ingredients: this product takes nothing from stock and never runs out.</p>`}
      ${f.recipe.map((r, k) => html`<div class="recipe-row" key=${k}>
        <${Select} label=${`Ingredient ${k + 1}`} value=${r.ingredient_id} options=${options}
          onChange=${(v) => setRow(k, { ingredient_id: v })} error=${errs[`recipe[${k}].ingredient_id`]} />
        <${Input} label=${`Amount of ingredient ${k + 1}`} inputmode="numeric" value=${r.quantity} onInput=${(v) => setRow(k, { quantity: v })}
          suffix=${ingById.get(r.ingredient_id) ? unitLabel(ingById.get(r.ingredient_id).unit) : ''} error=${errs[`recipe[${k}].quantity`]} />
        <button type="button" class="icon-btn remove" aria-label=${`Remove ingredient ${k + 1}`}
          onClick=${() => setF({ ...f, recipe: f.recipe.filter((_, j) => j !== k) })}><${Icon} name="trash" /></button>
      </div>`)}
      <${Button} kind="ghost" icon="plus" onClick=${() => setF({ ...f, recipe: [...f.recipe, { ingredient_id: '', quantity: '' }] })}>Add ingredient<//>
    </fieldset>
    ${err && html`<${Alert}>${describe(err)}<//>`}
  <//>`;
}
