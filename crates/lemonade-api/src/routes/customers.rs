use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields, Erasure, ErasureUnderWay};
use lemonade_domain::ids::CustomerId;
use lemonade_domain::order::Order;
use lemonade_domain::ports::{CursorKind, OrderFilter, Page};
use serde::{Deserialize, Serialize};

use super::{PageParams, page, parsed, path_id};
use crate::body::Body;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};
use crate::schema::SEARCH_LEN_MAX;
use crate::{AppState, body, schema};

/// A new customer: the name is required.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+44 20 7946 0958"}))]
pub struct NewCustomerBody {
    #[schema(schema_with = schema::name)]
    pub name: String,
    #[schema(schema_with = schema::email)]
    pub email: Option<String>,
    #[schema(schema_with = schema::phone)]
    pub phone: Option<String>,
}

/// A change to a customer: at least one field. An empty or null email or phone clears it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, example = json!({"email": "ada@example.com"}))]
pub struct CustomerPatch {
    #[schema(schema_with = schema::name, required = false)]
    pub name: String,
    #[schema(schema_with = schema::email)]
    pub email: Option<String>,
    #[schema(schema_with = schema::phone)]
    pub phone: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerSearch {
    /// Finds customers whose name or email contains it, case and accents ignored ("zoe" finds
    /// "Zoë"), or, when it reads as a phone number (digits, spaces and `+ - ( ) .`), whose
    /// phone number holds its digits ("+447700900123" finds "+44 7700 900123"). `%` and `_`
    /// are plain characters. Empty: every customer.
    pub q: Option<String>,
    /// How many items, at most.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl CustomerSearch {
    pub const CURSOR: CursorKind = CursorKind::Id;
}

fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    path_id(raw, CustomerId::parse, "customer")
}

/// Reads a customer body: `is_new` makes the name required.
fn fields(body: Body, is_new: bool) -> Result<CustomerFields, ApiError> {
    parsed(|e| {
        let (name, email, phone) = body::read(body, e, |r| {
            (
                r.string("name"),
                r.clearable_string("email"),
                r.clearable_string("phone"),
            )
        })?;
        // Null clears, like an empty string.
        let clear = |v: Option<Option<String>>| v.map(Option::unwrap_or_default);
        let (email, phone) = (clear(email), clear(phone));
        CustomerFields::parse(e, name.as_deref(), email.as_deref(), phone.as_deref(), is_new)
    })
}

#[utoipa::path(get, path = "/customers", tag = "customers", operation_id = "list_customers", params(CustomerSearch),
    responses((status = 200, body = Page<Customer>)))]
pub async fn list(State(app): State<AppState>, query: Query<CustomerSearch>) -> Result<Json<Page<Customer>>, ApiError> {
    let (search, page) = query.parse(|e, q| {
        let search = match q.q.as_deref() {
            Some(s) if s.chars().count() > SEARCH_LEN_MAX => {
                e.push("q", format!("at most {SEARCH_LEN_MAX} characters"));
                None
            }
            s => Some(s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)),
        };
        let page = page(e, q.limit.as_deref(), q.cursor.as_deref(), CustomerSearch::CURSOR);
        Some((search?, page?))
    })?;
    Ok(Json(app.shop.list_customers(search, page).await?))
}

#[utoipa::path(post, path = "/customers", tag = "customers", operation_id = "create_customer", request_body = NewCustomerBody,
    responses((status = 201, body = Customer)))]
pub async fn create(State(app): State<AppState>, JsonBody(body): JsonBody) -> Result<impl IntoResponse, ApiError> {
    let fields = fields(body, true)?;
    Ok((StatusCode::CREATED, Json(app.shop.create_customer(fields).await?)))
}

#[utoipa::path(get, path = "/customers/{id}", tag = "customers", operation_id = "get_customer",
    responses((status = 200, body = Customer)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Customer>, ApiError> {
    Ok(Json(app.shop.get_customer(customer_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", operation_id = "update_customer", request_body = CustomerPatch,
    responses((status = 200, body = Customer), (status = 409, body = Problem, description = "`conflict`: the customer was anonymised")))]
pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Customer>, ApiError> {
    let id = customer_id(&id)?;
    let fields = fields(body, false)?;
    Ok(Json(app.shop.update_customer(id, fields).await?))
}

/// Erases the person: their name, email and phone are anonymised; their orders stay, for
/// the books, and the customer stays (a later read answers it anonymised rather than 404).
/// The points are forfeited (the balance goes to 0, since nobody can spend them any more),
/// and the record is closed: the points of an order still in flight, or taken back by a
/// later cancellation, change nothing and add no activity. From the answer on, no order can
/// name the customer (422 on `customer_id`). Erasing twice changes nothing.
///
/// `200`: done, with the customer as they now are. `202` (distributed mode only): the
/// erasure is recorded but not finished, because the customer list (the CRM service) is
/// not answering or orders of theirs are still being completed. It cannot be undone, no
/// order can name the customer from this answer on, and it finishes by itself as soon as
/// it can; nothing more needs doing. `Location` is the customer: it reads
/// `anonymised: true` once done (asking `DELETE` again also tells); while the customer list
/// is still not answering, it is a 503 `unavailable` (with `Retry-After`) saying the erasure
/// is under way, at once rather than after the whole deadline. A 5xx to the `DELETE`, by
/// contrast, means nothing was recorded.
#[utoipa::path(delete, path = "/customers/{id}", tag = "customers", operation_id = "anonymise_customer",
    responses((status = 200, body = Customer, description = "erased"),
        (status = 202, body = ErasureUnderWay,
            description = "recorded, not finished (distributed mode: the customer list is not answering, or orders of theirs are still being completed): it finishes by itself, and no order can name the customer from now on",
            headers(("Location" = String, description = "the customer's URL: it reads `anonymised: true` once the erasure is done, and until then, while the customer list is not answering, 503 saying the erasure is under way")))))]
pub async fn anonymise(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    Ok(match app.shop.anonymise_customer(id).await? {
        Erasure::Done(customer) => Json(customer).into_response(),
        Erasure::UnderWay(under_way) => {
            let location =
                HeaderValue::from_str(&format!("/api/v1/customers/{}", under_way.id)).expect("ids are header-safe");
            (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(under_way)).into_response()
        }
    })
}

#[utoipa::path(get, path = "/customers/{id}/orders", tag = "customers", operation_id = "list_customer_orders", params(PageParams),
    responses((status = 200, body = Page<Order>)))]
pub async fn orders(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Query<PageParams>,
) -> Result<Json<Page<Order>>, ApiError> {
    let filter = OrderFilter {
        status: None,
        customer_id: Some(customer_id(&id)?),
    };
    Ok(Json(
        app.shop.list_orders(filter, query.parse(|e, q| q.parse(e))?).await?,
    ))
}

#[utoipa::path(get, path = "/customers/{id}/export", tag = "customers", operation_id = "export_customer",
    responses((status = 200, body = CustomerExport, headers(("Content-Disposition" = String, description = "attachment; filename=\"customer-<id>.json\"")))))]
pub async fn export(State(app): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let id = customer_id(&id)?;
    let export = app.shop.export_customer(id.clone()).await?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"customer-{id}.json\"")).expect("ids are header-safe");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(export)))
}
