use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lemonade_domain::ids::IngredientId;
use lemonade_domain::ports::{CursorKind, Page};
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use serde::{Deserialize, Serialize};

use lemonade_domain::error::FieldErrors;

use super::{PageParams, id_param, page, parsed, path_id, with_catalog_refs};
use crate::body::Body;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};
use crate::{AppState, body};
use axum::Json;

/// A new ingredient.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Lemons", "unit": "piece", "on_hand": 120, "reorder_level": 20}))]
pub struct CreateIngredient {
    /// Stored as a person reads it (NFC, one kind of space, no invisible characters, trimmed;
    /// at most 200 characters, refused when nothing in it is visible). Unique as a person
    /// reads it: another name that differs only in case, composition, invisible characters or
    /// kinds of space is the same name.
    #[schema(schema_with = crate::schema::name)]
    pub name: String,
    #[schema(schema_with = crate::schema::unit)]
    pub unit: String,
    /// Opening stock, recorded in the ledger as a restock. Default 0.
    #[schema(schema_with = crate::schema::level_or_null)]
    pub on_hand: Option<i64>,
    /// At or below this, the ingredient is `low`. Default 0.
    #[schema(schema_with = crate::schema::level_or_null)]
    pub reorder_level: Option<i64>,
}

/// A restock or a waste record.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 24, "note": "market delivery"}))]
pub struct StockChange {
    #[schema(schema_with = crate::schema::quantity)]
    pub quantity: i64,
    #[schema(schema_with = crate::schema::note)]
    pub note: Option<String>,
}

/// A count of what is on the shelf.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"on_hand": 96, "note": "Monday count"}))]
pub struct StockCount {
    /// What the count found on the shelf; the difference is recorded as a `count` move.
    #[schema(schema_with = crate::schema::level)]
    pub on_hand: i64,
    #[schema(schema_with = crate::schema::note)]
    pub note: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Adjusted {
    pub ingredient: Ingredient,
    #[serde(rename = "move")]
    pub move_: StockMove,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovesParams {
    /// Only this ingredient's moves (404 if there is no such ingredient); empty for all.
    pub ingredient_id: Option<String>,
    /// How many items, at most.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl MovesParams {
    /// The ledger's cursors: a move's sequence number (its id).
    pub const CURSOR: CursorKind = CursorKind::Sequence;
}

#[utoipa::path(get, path = "/ingredients", tag = "stock", operation_id = "list_ingredients", params(PageParams),
    responses((status = 200, body = Page<Ingredient>)))]
pub async fn list(State(app): State<AppState>, query: Query<PageParams>) -> Result<Json<Page<Ingredient>>, ApiError> {
    Ok(Json(app.shop.list_ingredients(query.parse(|e, q| q.parse(e))?).await?))
}

#[utoipa::path(post, path = "/ingredients", tag = "stock", operation_id = "create_ingredient", request_body = CreateIngredient,
    responses((status = 201, body = Ingredient)))]
pub async fn create(State(app): State<AppState>, JsonBody(body): JsonBody) -> Result<impl IntoResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let read = body::read(body, &mut errors, |r| {
        (
            r.string("name"),
            r.string("unit"),
            r.optional_integer("on_hand"),
            r.optional_integer("reorder_level"),
        )
    });
    let (name, unit, on_hand, reorder_level) = read.unwrap_or_default();
    let parsed = NewIngredient::parse(&mut errors, name.as_deref(), unit.as_deref(), on_hand, reorder_level);
    let new = with_catalog_refs(&app, errors, parsed).await?;
    Ok((StatusCode::CREATED, Json(app.shop.create_ingredient(new).await?)))
}

#[utoipa::path(get, path = "/ingredients/{id}", tag = "stock", operation_id = "get_ingredient",
    responses((status = 200, body = Ingredient)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Ingredient>, ApiError> {
    let id = path_id(&id, IngredientId::parse, "ingredient")?;
    Ok(Json(app.shop.get_ingredient(id).await?))
}

/// Reads a restock or waste body (`waste`) into an adjustment.
fn restock_or_waste(body: Body, waste: bool) -> Result<StockAdjustment, ApiError> {
    parsed(|e| {
        let (quantity, note) = body::read(body, e, |r| (r.integer("quantity"), r.optional_string("note")))?;
        StockAdjustment::parse_restock_or_waste(e, waste, quantity, note.as_deref())
    })
}

async fn adjust(app: AppState, id: String, adjustment: StockAdjustment) -> Result<Json<Adjusted>, ApiError> {
    let id = path_id(&id, IngredientId::parse, "ingredient")?;
    let (ingredient, move_) = app.shop.adjust_stock(id, adjustment).await?;
    Ok(Json(Adjusted { ingredient, move_ }))
}

#[utoipa::path(post, path = "/ingredients/{id}/restock", tag = "stock", operation_id = "restock_ingredient", request_body = StockChange,
    responses((status = 200, body = Adjusted)))]
pub async fn restock(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Adjusted>, ApiError> {
    adjust(app, id, restock_or_waste(body, false)?).await
}

#[utoipa::path(post, path = "/ingredients/{id}/waste", tag = "stock", operation_id = "waste_ingredient", request_body = StockChange,
    responses((status = 200, body = Adjusted), (status = 409, body = Problem, description = "`insufficient_stock`: more than is on hand")))]
pub async fn waste(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Adjusted>, ApiError> {
    adjust(app, id, restock_or_waste(body, true)?).await
}

#[utoipa::path(post, path = "/ingredients/{id}/count", tag = "stock", operation_id = "count_ingredient", request_body = StockCount,
    responses((status = 200, body = Adjusted)))]
pub async fn count(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Adjusted>, ApiError> {
    let adjustment = parsed(|e| {
        let (on_hand, note) = body::read(body, e, |r| (r.integer("on_hand"), r.optional_string("note")))?;
        StockAdjustment::parse_count(e, on_hand, note.as_deref())
    })?;
    adjust(app, id, adjustment).await
}

#[utoipa::path(get, path = "/stock/moves", tag = "stock", operation_id = "list_moves", params(MovesParams),
    responses((status = 200, body = Page<StockMove>), (status = 404, body = Problem, description = "`not_found`: no such ingredient")))]
pub async fn moves(State(app): State<AppState>, query: Query<MovesParams>) -> Result<Json<Page<StockMove>>, ApiError> {
    let (ingredient, page) = query.parse(|e, q| {
        let ingredient = id_param(e, "ingredient_id", q.ingredient_id.as_deref(), IngredientId::parse);
        let page = page(e, q.limit.as_deref(), q.cursor.as_deref(), MovesParams::CURSOR);
        Some((ingredient?, page?))
    })?;
    Ok(Json(app.shop.list_moves(ingredient, page).await?))
}
