use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lemonade_domain::ids::IngredientId;
use lemonade_domain::ports::Page;
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use lemonade_domain::values::Quantity;
use lemonade_domain::{ShopError, stock};
use serde::{Deserialize, Serialize};

use super::{PageParams, path_id};
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};
use axum::Json;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIngredient {
    /// Stored as a person reads it (NFC, one kind of space, no invisible characters, trimmed;
    /// at most 200 characters, refused when nothing in it is visible). Unique as a person
    /// reads it: another name that differs only in case, composition, invisible characters or
    /// kinds of space is the same name.
    pub name: String,
    /// `g`, `ml` or `piece`.
    pub unit: String,
    /// Opening stock, recorded in the ledger as a restock. Default 0.
    pub on_hand: Option<i64>,
    pub reorder_level: Option<i64>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockChange {
    pub quantity: i64,
    pub note: Option<String>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockCount {
    /// What the count found on the shelf; the difference is recorded as a `count` move.
    pub on_hand: i64,
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
    pub ingredient_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/ingredients", tag = "stock", params(PageParams),
    responses((status = 200, body = Page<Ingredient>), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<PageParams>,
) -> Result<Json<Page<Ingredient>>, ApiError> {
    Ok(Json(app.shop.list_ingredients(q.parse()?).await?))
}

#[utoipa::path(post, path = "/ingredients", tag = "stock", request_body = CreateIngredient,
    responses((status = 201, body = Ingredient), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<CreateIngredient>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewIngredient::parse(&body.name, &body.unit, body.on_hand, body.reorder_level)?;
    Ok((StatusCode::CREATED, Json(app.shop.create_ingredient(new).await?)))
}

#[utoipa::path(get, path = "/ingredients/{id}", tag = "stock",
    responses((status = 200, body = Ingredient), (status = 404, body = Problem)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Ingredient>, ApiError> {
    let id = path_id(&id, IngredientId::parse, "ingredient")?;
    Ok(Json(app.shop.get_ingredient(id).await?))
}

fn quantity(raw: i64) -> Result<Quantity, ApiError> {
    Quantity::new(raw).map_err(|m| ShopError::validation("quantity", m).into())
}

async fn adjust(app: AppState, id: String, adjustment: StockAdjustment) -> Result<Json<Adjusted>, ApiError> {
    let id = path_id(&id, IngredientId::parse, "ingredient")?;
    let (ingredient, move_) = app.shop.adjust_stock(id, adjustment).await?;
    Ok(Json(Adjusted { ingredient, move_ }))
}

#[utoipa::path(post, path = "/ingredients/{id}/restock", tag = "stock", request_body = StockChange,
    responses((status = 200, body = Adjusted), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn restock(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StockChange>,
) -> Result<Json<Adjusted>, ApiError> {
    let adjustment = StockAdjustment::Restock {
        quantity: quantity(body.quantity)?,
        note: StockAdjustment::parse_note(body.note.as_deref())?,
    };
    adjust(app, id, adjustment).await
}

#[utoipa::path(post, path = "/ingredients/{id}/waste", tag = "stock", request_body = StockChange,
    responses((status = 200, body = Adjusted), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn waste(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StockChange>,
) -> Result<Json<Adjusted>, ApiError> {
    let adjustment = StockAdjustment::Waste {
        quantity: quantity(body.quantity)?,
        note: StockAdjustment::parse_note(body.note.as_deref())?,
    };
    adjust(app, id, adjustment).await
}

#[utoipa::path(post, path = "/ingredients/{id}/count", tag = "stock", request_body = StockCount,
    responses((status = 200, body = Adjusted), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn count(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StockCount>,
) -> Result<Json<Adjusted>, ApiError> {
    let adjustment = StockAdjustment::Count {
        on_hand: stock::parse_level(body.on_hand).map_err(|m| ShopError::validation("on_hand", m))?,
        note: StockAdjustment::parse_note(body.note.as_deref())?,
    };
    adjust(app, id, adjustment).await
}

#[utoipa::path(get, path = "/stock/moves", tag = "stock", params(MovesParams),
    responses((status = 200, body = Page<StockMove>), (status = 404, body = Problem)))]
pub async fn moves(
    State(app): State<AppState>,
    Query(q): Query<MovesParams>,
) -> Result<Json<Page<StockMove>>, ApiError> {
    let page = lemonade_domain::ports::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let ingredient = match q.ingredient_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(path_id(raw, IngredientId::parse, "ingredient")?),
    };
    Ok(Json(app.shop.list_moves(ingredient, page).await?))
}
