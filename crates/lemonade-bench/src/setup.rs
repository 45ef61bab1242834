//! Before the run: find the product to order and restock its ingredients.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{Answer, Conn, Failure, Target, error_code, percent_encode};

/// Largest quantity one restock may carry.
pub(crate) const RESTOCK_QUANTITY_MAX: u64 = 1_000_000_000;
/// Most product pages read while looking for the product.
const PAGES_MAX: usize = 1_000;

#[derive(Debug, Deserialize)]
struct ProductPage {
    items: Vec<ProductItem>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// A product as the list shows it; only the fields the bench needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProductItem {
    /// Kept as JSON so the order carries it exactly as the server wrote it.
    pub id: Value,
    pub name: String,
    #[serde(default)]
    pub recipe: Vec<RecipeItem>,
    #[serde(default = "default_active")]
    pub active: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RecipeItem {
    pub ingredient_id: Value,
    pub quantity: u64,
}

fn default_active() -> bool {
    true
}

/// An id as text: a JSON string as is, anything else as its JSON.
pub(crate) fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ProductItem {
    /// Its id, or its name as a person reads it ("lemonade" names "Lemonade", as the shop's
    /// own rule for the same name says).
    fn matches(&self, wanted: &str) -> bool {
        use lemonade_domain::text::name_key;
        id_text(&self.id) == wanted || name_key(&self.name) == name_key(wanted)
    }
}

/// Picks from one page: the product whose id or name is `wanted`, else the first active one.
fn pick<'a>(items: &'a [ProductItem], wanted: Option<&str>) -> Option<&'a ProductItem> {
    match wanted {
        Some(wanted) => items
            .iter()
            .find(|p| id_text(&p.id) == wanted)
            .or_else(|| items.iter().find(|p| p.matches(wanted))),
        None => items.iter().find(|p| p.active),
    }
}

/// A setup request's transport failure, as an error message.
fn transport_error(what: &str, target: &Target, failure: Failure) -> anyhow::Error {
    match failure {
        Failure::Timeout => anyhow::anyhow!("{what} at {}: no answer within the timeout, after retries", target.url),
        Failure::Connect => anyhow::anyhow!("{what} at {}: connection failed, after retries", target.url),
    }
}

/// Describes a non-2xx answer for an error message.
fn rejection(answer: &Answer) -> String {
    let detail = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    format!(
        "HTTP {} {}{detail}",
        answer.status.as_u16(),
        error_code(answer.status, &answer.body)
    )
}

/// Reads the product list, page by page, until the product is found.
pub(crate) async fn find_product(
    target: &Target,
    addr: SocketAddr,
    conn: &mut Option<Conn>,
    wanted: Option<&str>,
) -> anyhow::Result<ProductItem> {
    let mut cursor: Option<String> = None;
    let mut seen = 0usize;
    for _ in 0..PAGES_MAX {
        let path = match &cursor {
            None => "/api/v1/products".to_owned(),
            Some(c) => format!("/api/v1/products?cursor={}", percent_encode(c)),
        };
        let uri = target.uri(&path)?;
        let mut retries = 0;
        let answer = target
            .send_with_retries(
                addr,
                conn,
                || target.request(Method::GET, uri.clone(), None),
                true,
                &mut retries,
            )
            .await
            .map_err(|f| transport_error("listing products", target, f))?;
        if !answer.status.is_success() {
            bail!("listing products at {}: {}", target.url, rejection(&answer));
        }
        let page: ProductPage = serde_json::from_slice(&answer.body)
            .with_context(|| format!("listing products at {}: the answer is not a product page", target.url))?;
        seen += page.items.len();
        if let Some(found) = pick(&page.items, wanted) {
            return Ok(found.clone());
        }
        match page.next_cursor {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    match wanted {
        Some(wanted) => bail!(
            "no product with id or name {wanted:?} among the {seen} products at {}",
            target.url
        ),
        None => bail!("no active product among the {seen} products at {}", target.url),
    }
}

/// The quantities of the restocks that together add `total`, none above the limit.
pub(crate) fn restock_chunks(total: u128) -> impl Iterator<Item = u64> {
    let max = u128::from(RESTOCK_QUANTITY_MAX);
    let mut left = total;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let take = left.min(max);
        left -= take;
        Some(take as u64)
    })
}

/// Restocks every ingredient of `product` with enough for `orders` units of it.
pub(crate) async fn restock(
    target: &Target,
    addr: SocketAddr,
    conn: &mut Option<Conn>,
    product: &ProductItem,
    orders: u64,
) -> anyhow::Result<()> {
    for item in &product.recipe {
        let ingredient = id_text(&item.ingredient_id);
        let uri = target.uri(&format!("/api/v1/ingredients/{}/restock", percent_encode(&ingredient)))?;
        let needed = u128::from(item.quantity) * u128::from(orders);
        for quantity in restock_chunks(needed) {
            let body = Bytes::from(serde_json::to_vec(
                &serde_json::json!({"quantity": quantity, "note": "bench"}),
            )?);
            // A restock takes no idempotency key (only placing an order does; the shop refuses
            // one elsewhere): a retry after a lost answer may restock twice, which only leaves
            // the bench more stock than it needs.
            let mut retries = 0;
            let answer = target
                .send_with_retries(
                    addr,
                    conn,
                    || target.request(Method::POST, uri.clone(), Some(body.clone())),
                    false,
                    &mut retries,
                )
                .await
                .map_err(|f| transport_error(&format!("restocking ingredient {ingredient:?}"), target, f))?;
            if !answer.status.is_success() {
                bail!(
                    "restocking ingredient {ingredient:?} by {quantity} (for {orders} orders of {:?}) at {}: {}",
                    product.name,
                    target.url,
                    rejection(&answer)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restock_is_split_into_chunks_of_at_most_a_billion() {
        assert_eq!(restock_chunks(0).count(), 0);
        assert_eq!(restock_chunks(5).collect::<Vec<_>>(), vec![5]);
        assert_eq!(restock_chunks(1_000_000_000).collect::<Vec<_>>(), vec![1_000_000_000]);
        assert_eq!(
            restock_chunks(2_500_000_001).collect::<Vec<_>>(),
            vec![1_000_000_000, 1_000_000_000, 500_000_001]
        );
    }

    fn page(json: &str) -> Vec<ProductItem> {
        serde_json::from_str::<ProductPage>(json).unwrap().items
    }

    #[test]
    fn first_active_product_is_picked_by_default() {
        let items = page(
            r#"{"items":[
                {"id":"a","name":"Old","price":1,"recipe":[],"active":false,"can_make":0},
                {"id":"b","name":"Lemonade","price":250,"recipe":[{"ingredient_id":"lemon","quantity":2}],"active":true,"can_make":7}
            ],"next_cursor":null}"#,
        );
        let p = pick(&items, None).unwrap();
        assert_eq!(id_text(&p.id), "b");
        assert_eq!(p.recipe[0].quantity, 2);
        assert_eq!(id_text(&p.recipe[0].ingredient_id), "lemon");
    }

    #[test]
    fn product_is_picked_by_id_before_name() {
        let items = page(
            r#"{"items":[
                {"id":"x","name":"y","active":true},
                {"id":"y","name":"Tea","active":false},
                {"id":7,"name":"Seven","active":true}
            ]}"#,
        );
        assert_eq!(id_text(&pick(&items, Some("y")).unwrap().id), "y");
        assert_eq!(id_text(&pick(&items, Some("Tea")).unwrap().id), "y");
        assert_eq!(
            id_text(&pick(&items, Some(" tea\u{a0}")).unwrap().id),
            "y",
            "as a person reads it"
        );
        assert_eq!(id_text(&pick(&items, Some("7")).unwrap().id), "7");
        assert!(pick(&items, Some("nope")).is_none());
    }
}
