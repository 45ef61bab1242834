use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::ShopError;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::order::{Order, OrderDraft, OrderStatus, RawOrderLine};
use lemonade_domain::ports::{IdempotencyKey, OrderFilter, Page, PlaceOrder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::path_id;
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    pub customer_id: Option<String>,
    pub lines: Vec<RawOrderLine>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderParams {
    /// `pending`, `confirmed`, `failed` or `cancelled`.
    pub status: Option<String>,
    pub customer_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The fingerprint an idempotency key is bound to: a hash of the parsed request, so that the
/// same order sent with other whitespace or field order is still "the same request".
fn fingerprint(draft: &OrderDraft) -> String {
    let canonical = serde_json::to_vec(draft).expect("drafts always serialise");
    Sha256::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect()
}

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Places an order. With an `Idempotency-Key`, a retry gets the first answer again
/// (`Idempotent-Replayed: true`) and never a second order.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters; one per order attempt")),
    responses(
        (status = 201, body = Order, description = "placed and confirmed"),
        (status = 202, body = Order, description = "accepted, still pending (distributed mode)"),
        (status = 409, body = Problem, description = "insufficient_stock or request_in_progress"),
        (status = 422, body = Problem, description = "validation_failed or idempotency_key_reused")))]
pub async fn place(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PlaceOrderBody>,
) -> Result<Response, ApiError> {
    let draft = OrderDraft::parse(body.customer_id.as_deref(), &body.lines)?;
    let idempotency = match headers.get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| ShopError::validation("Idempotency-Key", "must be printable ASCII"))?;
            Some(IdempotencyKey::parse(key, fingerprint(&draft))?)
        }
    };
    let placed = app.shop.place_order(PlaceOrder { draft, idempotency }).await?;
    let mut response = match placed.outcome {
        Ok(order) => {
            let status = match order.status {
                OrderStatus::Pending => StatusCode::ACCEPTED,
                _ => StatusCode::CREATED,
            };
            let location = HeaderValue::from_str(&format!("/api/v1/orders/{}", order.id)).expect("ids are header-safe");
            (status, [(header::LOCATION, location)], Json(order)).into_response()
        }
        Err(refused) => ApiError::from(refused).into_response(),
    };
    if placed.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(get, path = "/orders", tag = "orders", params(OrderParams),
    responses((status = 200, body = Page<Order>), (status = 422, body = Problem)))]
pub async fn list(State(app): State<AppState>, Query(q): Query<OrderParams>) -> Result<Json<Page<Order>>, ApiError> {
    let page = lemonade_domain::ports::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            OrderStatus::parse(s)
                .ok_or_else(|| ShopError::validation("status", "must be pending, confirmed, failed or cancelled"))?,
        ),
    };
    let customer_id = match q.customer_id.as_deref() {
        None | Some("") => None,
        Some(c) => Some(path_id(c, CustomerId::parse, "customer")?),
    };
    Ok(Json(
        app.shop.list_orders(OrderFilter { status, customer_id }, page).await?,
    ))
}

/// One order. In the distributed mode an order answered 202 reads `pending` until its
/// placement ends, also while the orders service is down (the coordinator answers from its
/// saga log what it knows for certain: pending, or failed; 503 when it cannot know).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Order>, ApiError> {
    Ok(Json(app.shop.get_order(path_id(&id, OrderId::parse, "order")?).await?))
}

/// Cancels a confirmed order: its stock comes back and its points are taken back.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders",
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Order>, ApiError> {
    Ok(Json(
        app.shop.cancel_order(path_id(&id, OrderId::parse, "order")?).await?,
    ))
}
