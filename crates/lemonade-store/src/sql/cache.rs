//! What the writer last read of the catalogue and the stock, so that placing an order does
//! not query them each time (what that saves: docs/decisions.md, "Figures out of code
//! comments").
//!
//! Only the writer thread uses it, so its locks are never contended. It stays true by these
//! rules: only rows that exist are cached; every stock move goes through
//! [`super::stock::apply_move`], which keeps a cached on-hand in step; a job that changes a
//! product forgets it; and a rolled-back batch, which may have cached what it wrote, forgets
//! everything. Should a bug break a rule anyway, the schema still refuses a move that takes
//! on-hand below zero: a wrong cache can cost a batch a retry, never oversell.

use std::collections::HashMap;

use lemonade_domain::ShopError;
use lemonade_domain::ids::{IngredientId, ProductId};
use lemonade_domain::order::ProductForSale;
use parking_lot::Mutex;

use crate::conn::Db;

/// Most entries kept of each kind; past that the cache starts over (a shop has far fewer).
const CACHED_MAX: usize = 10_000;

#[derive(Default)]
pub struct WriterCache {
    /// A product for sale and the version of its recipe.
    products: Mutex<HashMap<ProductId, (ProductForSale, i64)>>,
    on_hand: Mutex<HashMap<IngredientId, u64>>,
}

fn remember<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CACHED_MAX {
        map.clear();
    }
    map.insert(key, value);
}

impl WriterCache {
    /// A product for sale and the version of its recipe.
    pub fn product(&self, conn: &dyn Db, id: &ProductId) -> Result<Option<(ProductForSale, i64)>, ShopError> {
        if let Some(p) = self.products.lock().get(id) {
            return Ok(Some(p.clone()));
        }
        let found = super::catalog::for_sale(conn, id)?;
        if let Some(p) = &found {
            remember(&mut self.products.lock(), id.clone(), p.clone());
        }
        Ok(found)
    }

    pub fn forget_product(&self, id: &ProductId) {
        self.products.lock().remove(id);
    }

    pub fn on_hand(&self, conn: &dyn Db, id: &IngredientId) -> Result<Option<u64>, ShopError> {
        if let Some(&n) = self.on_hand.lock().get(id) {
            return Ok(Some(n));
        }
        let found = super::stock::on_hand(conn, id)?;
        if let Some(n) = found {
            remember(&mut self.on_hand.lock(), id.clone(), n);
        }
        Ok(found)
    }

    /// Keeps a cached on-hand in step with a move just written.
    pub fn moved(&self, id: &IngredientId, delta: i64) {
        let mut on_hand = self.on_hand.lock();
        if let Some(n) = on_hand.get_mut(id) {
            match n.checked_add_signed(delta) {
                Some(next) => *n = next,
                None => {
                    on_hand.remove(id);
                }
            }
        }
    }

    pub fn clear(&self) {
        self.products.lock().clear();
        self.on_hand.lock().clear();
    }
}
