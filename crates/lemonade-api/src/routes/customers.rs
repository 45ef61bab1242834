use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields};
use lemonade_domain::ids::CustomerId;
use lemonade_domain::order::Order;
use lemonade_domain::ports::{OrderFilter, Page};
use serde::{Deserialize, Serialize};

use super::{PageParams, path_id};
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};

/// A new customer needs a name; a PATCH may send any subset. An empty email or phone clears it.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Stored as a person reads it (NFC, one kind of space, no invisible characters, trimmed;
    /// at most 200 characters, refused when nothing in it is visible). Not unique.
    pub name: Option<String>,
    /// Stored trimmed, in NFC, with the domain in lower case.
    pub email: Option<String>,
    /// Digits, spaces and `+ - ( ) .`; full-width forms become ASCII.
    pub phone: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerSearch {
    /// Finds customers whose name or email contains it, case and accents ignored ("zoe" finds
    /// "Zoë"), or, when it reads as a phone number (digits, spaces and `+ - ( ) .`), whose
    /// phone number holds its digits ("+447700900123" finds "+44 7700 900123"). At most 100
    /// characters; `%` and `_` are plain characters.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const SEARCH_LEN_MAX: usize = 100;

fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    path_id(raw, CustomerId::parse, "customer")
}

#[utoipa::path(get, path = "/customers", tag = "customers", params(CustomerSearch),
    responses((status = 200, body = Page<Customer>), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<CustomerSearch>,
) -> Result<Json<Page<Customer>>, ApiError> {
    let page = lemonade_domain::ports::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let search = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > SEARCH_LEN_MAX) {
        return Err(lemonade_domain::ShopError::validation("q", format!("at most {SEARCH_LEN_MAX} characters")).into());
    }
    Ok(Json(app.shop.list_customers(search, page).await?))
}

#[utoipa::path(post, path = "/customers", tag = "customers", request_body = CustomerBody,
    responses((status = 201, body = Customer), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<CustomerBody>,
) -> Result<impl IntoResponse, ApiError> {
    let fields = CustomerFields::parse(body.name.as_deref(), body.email.as_deref(), body.phone.as_deref(), true)?;
    Ok((StatusCode::CREATED, Json(app.shop.create_customer(fields).await?)))
}

#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    responses((status = 200, body = Customer), (status = 404, body = Problem)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Customer>, ApiError> {
    Ok(Json(app.shop.get_customer(customer_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", request_body = CustomerBody,
    responses((status = 200, body = Customer), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CustomerBody>,
) -> Result<Json<Customer>, ApiError> {
    let id = customer_id(&id)?;
    let fields = CustomerFields::parse(
        body.name.as_deref(),
        body.email.as_deref(),
        body.phone.as_deref(),
        false,
    )?;
    Ok(Json(app.shop.update_customer(id, fields).await?))
}

/// Erases the person: their name, email and phone are anonymised; their orders stay, for
/// the books. The points are forfeited (the balance goes to 0, since nobody can spend them
/// any more), and the record is closed: the points of an order still in flight, or taken
/// back by a later cancellation, change nothing and add no activity. From the answer on, no
/// order can name the customer (422 on `customer_id`). In the distributed mode an erasure
/// first waits for the customer's orders in flight; if they take longer than an order may,
/// the answer is 503, no new order can name the customer already, and the erasure finishes
/// by itself: ask again to see it done. Erasing twice changes nothing.
#[utoipa::path(delete, path = "/customers/{id}", tag = "customers",
    responses((status = 200, body = Customer), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "the customer's orders in flight are still being completed; the erasure finishes by itself")))]
pub async fn anonymise(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Customer>, ApiError> {
    Ok(Json(app.shop.anonymise_customer(customer_id(&id)?).await?))
}

#[utoipa::path(get, path = "/customers/{id}/orders", tag = "customers", params(PageParams),
    responses((status = 200, body = Page<Order>), (status = 404, body = Problem)))]
pub async fn orders(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Result<Json<Page<Order>>, ApiError> {
    let filter = OrderFilter {
        status: None,
        customer_id: Some(customer_id(&id)?),
    };
    Ok(Json(app.shop.list_orders(filter, q.parse()?).await?))
}

#[utoipa::path(get, path = "/customers/{id}/export", tag = "customers",
    responses((status = 200, body = CustomerExport), (status = 404, body = Problem)))]
pub async fn export(State(app): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let id = customer_id(&id)?;
    let export = app.shop.export_customer(id.clone()).await?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"customer-{id}.json\"")).expect("ids are header-safe");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(export)))
}
