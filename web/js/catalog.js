// Client-side lookups by id: staff see names, never ids. Ingredients and products are small
// lists kept in memory; customers are fetched one by one when a page needs a name.
import { listAll, get } from './api.js';

const cache = { ingredients: null, products: null, at: 0 };
const customers = new Map();

export async function loadCatalog({ force = false } = {}) {
  if (!force && cache.ingredients && Date.now() - cache.at < 2000) return view();
  const [ingredients, products] = await Promise.all([listAll('/ingredients'), listAll('/products')]);
  cache.ingredients = ingredients;
  cache.products = products;
  cache.at = Date.now();
  return view();
}

function view() {
  return {
    ingredients: cache.ingredients,
    products: cache.products,
    ingById: new Map(cache.ingredients.map((i) => [i.id, i])),
    prodById: new Map(cache.products.map((p) => [p.id, p])),
  };
}

export function invalidateCatalog() { cache.at = 0; }

// A product's `can_make` is how many more the stock allows, or null when the stock does not
// limit it (it has no recipe). Never compare null as a number: `null <= 0` is true in JS.
/** Whether the stock limits how many of `p` can be made. */
export const stockLimited = (p) => p.can_make !== null && p.can_make !== undefined;
/** Whether none of `p` can be made now. */
export const soldOut = (p) => stockLimited(p) && p.can_make <= 0;
/** Whether `n` of `p` is more than the stock allows. */
export const beyondStock = (p, n) => stockLimited(p) && n > p.can_make;

export function rememberCustomer(c) { if (c && c.id) customers.set(c.id, c); }

export async function customerById(id) {
  if (!id) return null;
  if (customers.has(id)) return customers.get(id);
  try {
    const c = await get(`/customers/${encodeURIComponent(id)}`);
    customers.set(id, c);
    return c;
  } catch (e) {
    if (e.code === 'not_found') return null;
    throw e;
  }
}

/** Names for many customer ids at once (each fetched at most once). */
export async function customerNames(ids) {
  const uniq = [...new Set(ids.filter(Boolean))];
  const found = await Promise.all(uniq.map((id) => customerById(id).catch(() => null)));
  const out = new Map();
  uniq.forEach((id, i) => out.set(id, found[i]));
  return out;
}
