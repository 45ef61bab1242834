use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::ShopError;
use lemonade_domain::error::FieldErrors;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::order::{Order, OrderDraft, OrderStatus, RawOrderLine};
use lemonade_domain::ports::{CursorKind, IdempotencyKey, OrderFilter, Page, PlaceOrder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{id_param, page, path_id};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, OptionalJsonBody, Path, Query};
use crate::{AppState, body, schema};

/// One line of an order.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineBody {
    /// A product on sale (422 on the line otherwise); each product on one line only.
    #[schema(schema_with = schema::id)]
    pub product_id: String,
    #[schema(schema_with = schema::line_quantity)]
    pub quantity: i64,
}

/// An order: 1 to 50 lines, for a known customer or none.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"product_id": "lemonade", "quantity": 2}]}))]
pub struct PlaceOrderBody {
    /// A customer the shop knows and has not anonymised (422 otherwise); absent or null for
    /// none.
    #[schema(schema_with = schema::id_or_null)]
    pub customer_id: Option<String>,
    #[schema(min_items = 1, max_items = 50)]
    pub lines: Vec<OrderLineBody>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderParams {
    /// Only orders in this status; empty for all.
    pub status: Option<String>,
    /// Only this customer's orders; empty for all.
    pub customer_id: Option<String>,
    /// How many items, at most.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl OrderParams {
    pub const CURSOR: CursorKind = CursorKind::Id;
}

/// The fingerprint an idempotency key is bound to: a hash of the parsed request, so that the
/// same order sent with other whitespace or field order is still "the same request".
fn fingerprint(draft: &OrderDraft) -> String {
    let canonical = serde_json::to_vec(draft).expect("drafts always serialise");
    Sha256::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect()
}

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The text of the `Idempotency-Key` header, if sent (a bad one is recorded in `errors`).
/// Sent twice it is refused, as a query parameter or a body field given twice is: which key
/// the client meant cannot be told, and guessing could place the order twice.
fn idempotency_key(headers: &HeaderMap, errors: &mut FieldErrors) -> Option<Option<String>> {
    let mut sent = headers.get_all(IDEMPOTENCY_HEADER).iter();
    let Some(value) = sent.next() else {
        return Some(None);
    };
    if sent.next().is_some() {
        errors.push("Idempotency-Key", crate::query::REPEATED);
        return None;
    }
    let key = value
        .to_str()
        .map_err(|_| "must be printable ASCII".to_owned())
        .and_then(|k| IdempotencyKey::check(k).map(|()| k.to_owned()));
    errors.check("Idempotency-Key", key).map(Some)
}

/// Places an order. With an `Idempotency-Key`, a retry gets the first answer again
/// (`Idempotent-Replayed: true`) and never a second order. A request with bad fields hears
/// of all of them in one 422, the unknown or unsold products and an unknown customer
/// included.
#[utoipa::path(post, path = "/orders", tag = "orders", operation_id = "place_order", request_body = PlaceOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters; one per order attempt")),
    responses(
        (status = 201, body = Order, description = "placed and confirmed",
            headers(("Location" = String, description = "the order's URL"), ("Idempotent-Replayed" = String, description = "`true` when this is the answer first given to this key"))),
        (status = 202, body = Order, description = "accepted, still pending (distributed mode: a service it needs did not answer in time); its Location tells how it ends",
            headers(("Location" = String, description = "the order's URL"), ("Idempotent-Replayed" = String, description = "`true` when this is the answer first given to this key"))),
        (status = 409, body = Problem, description = "`insufficient_stock` (with `shortages`) or `request_in_progress` (another request with this key is running)"),
        (status = 422, body = Problem, description = "`validation_failed` (every bad field in `errors`) or `idempotency_key_reused` (this key came with another order)")))]
pub async fn place(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::default();
    let read = body::read(body, &mut errors, |r| {
        let customer_id = r.optional_string("customer_id");
        let lines = r.objects("lines", |r| RawOrderLine {
            product_id: r.string("product_id"),
            quantity: r.integer("quantity"),
        });
        (customer_id, lines)
    });
    let (customer_id, lines) = read.unwrap_or_default();
    let (draft, refs) = OrderDraft::parse(&mut errors, customer_id.as_deref(), lines.as_deref());
    let key = idempotency_key(&headers, &mut errors);
    let (Some(draft), Some(key)) = (draft, key) else {
        // What only the shop can tell (a product it does not sell, an unknown customer), in
        // the same answer. A shop that cannot tell now leaves it out rather than fail.
        if refs.customer_id.is_some() || !refs.products.is_empty() {
            match app.shop.check_order_refs(refs).await {
                Ok(more) => errors.extend(more),
                Err(e) => tracing::debug!(error = %e, "could not check an order's references"),
            }
        }
        return Err(ShopError::from(errors).into());
    };
    let idempotency = key.map(|key| IdempotencyKey {
        key,
        fingerprint: fingerprint(&draft),
    });
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

#[utoipa::path(get, path = "/orders", tag = "orders", operation_id = "list_orders", params(OrderParams),
    responses((status = 200, body = Page<Order>), (status = 404, body = Problem, description = "`not_found`: no such customer")))]
pub async fn list(State(app): State<AppState>, query: Query<OrderParams>) -> Result<Json<Page<Order>>, ApiError> {
    let (filter, page) = query.parse(|e, q| {
        let status = match q.status.as_deref() {
            None | Some("") => Some(None),
            Some(s) => e.check(
                "status",
                OrderStatus::parse(s)
                    .map(Some)
                    .ok_or_else(|| "must be pending, confirmed, failed or cancelled".to_owned()),
            ),
        };
        let customer_id = id_param(e, "customer_id", q.customer_id.as_deref(), CustomerId::parse);
        let page = page(e, q.limit.as_deref(), q.cursor.as_deref(), OrderParams::CURSOR);
        let filter = OrderFilter {
            status: status?,
            customer_id: customer_id?,
        };
        Some((filter, page?))
    })?;
    Ok(Json(app.shop.list_orders(filter, page).await?))
}

/// One order. In the distributed mode an order answered 202 reads `pending` until its
/// placement ends, also while the orders service is down (the coordinator answers from its
/// saga log what it knows for certain: pending, or failed; 503 when it cannot know).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", operation_id = "get_order",
    responses((status = 200, body = Order)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Order>, ApiError> {
    Ok(Json(app.shop.get_order(path_id(&id, OrderId::parse, "order")?).await?))
}

/// What happened to one order, from every process that recorded something of it: each
/// event with its process (`service`), its hybrid logical clock stamp (`hlc`, what the list
/// is ordered by, so a cause always comes before its effect), the wall-clock time as that
/// process read it (`wall_time`, which may go backwards along the list when the machines'
/// clocks disagree) and what happened. At most 500 events (`truncated` says when there were
/// more; the first are kept). In the distributed mode the coordinator asks each service for
/// its part, each within 1 s; one that does not answer is named in `unreachable` and its
/// events are missing. The monolith reads its one database (`unreachable` is empty).
#[utoipa::path(get, path = "/orders/{id}/timeline", tag = "orders", operation_id = "order_timeline",
    responses((status = 200, body = lemonade_domain::hlc::Timeline)))]
pub async fn timeline(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<lemonade_domain::hlc::Timeline>, ApiError> {
    Ok(Json(
        app.shop.order_timeline(path_id(&id, OrderId::parse, "order")?).await?,
    ))
}

/// Nothing: a cancellation has no fields. The body may be left out, or be `{}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct NoFields {}

/// Cancels a confirmed order: its stock comes back and its points are taken back.
///
/// It takes no body; one that is sent must be an empty JSON object (a field in it is refused
/// like any unknown field).
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order", request_body = Option<NoFields>,
    responses((status = 200, body = Order), (status = 409, body = Problem, description = "`conflict`: only a confirmed order can be cancelled")))]
pub async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Order>, ApiError> {
    let id = path_id(&id, OrderId::parse, "order")?;
    if let Some(body) = body {
        FieldErrors::collect(|e| body::read(body, e, |_| ()))?;
    }
    Ok(Json(app.shop.cancel_order(id).await?))
}
