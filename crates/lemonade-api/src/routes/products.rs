use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lemonade_domain::catalog::{NewProduct, Product, ProductPatch, RawRecipeItem};
use lemonade_domain::ids::ProductId;
use lemonade_domain::ports::Page;
use serde::{Deserialize, Serialize};

use super::{PageParams, path_id};
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    /// Stored as a person reads it (NFC, one kind of space, no invisible characters, trimmed;
    /// at most 200 characters, refused when nothing in it is visible). Unique as a person
    /// reads it: another name that differs only in case, composition, invisible characters or
    /// kinds of space is the same name.
    pub name: String,
    /// In minor currency units.
    pub price: i64,
    pub recipe: Vec<RawRecipeItem>,
    /// Default true.
    pub active: Option<bool>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProduct {
    /// As in `CreateProduct`.
    pub name: Option<String>,
    pub price: Option<i64>,
    pub recipe: Option<Vec<RawRecipeItem>>,
    pub active: Option<bool>,
}

#[utoipa::path(get, path = "/products", tag = "products", params(PageParams),
    responses((status = 200, body = Page<Product>), (status = 422, body = Problem)))]
pub async fn list(State(app): State<AppState>, Query(q): Query<PageParams>) -> Result<Json<Page<Product>>, ApiError> {
    Ok(Json(app.shop.list_products(q.parse()?).await?))
}

#[utoipa::path(post, path = "/products", tag = "products", request_body = CreateProduct,
    responses((status = 201, body = Product), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<CreateProduct>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewProduct::parse(&body.name, body.price, &body.recipe, body.active)?;
    Ok((StatusCode::CREATED, Json(app.shop.create_product(new).await?)))
}

#[utoipa::path(get, path = "/products/{id}", tag = "products",
    responses((status = 200, body = Product), (status = 404, body = Problem)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Product>, ApiError> {
    let id = path_id(&id, ProductId::parse, "product")?;
    Ok(Json(app.shop.get_product(id).await?))
}

#[utoipa::path(patch, path = "/products/{id}", tag = "products", request_body = PatchProduct,
    responses((status = 200, body = Product), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatchProduct>,
) -> Result<Json<Product>, ApiError> {
    let id = path_id(&id, ProductId::parse, "product")?;
    let patch = ProductPatch::parse(body.name.as_deref(), body.price, body.recipe.as_deref(), body.active)?;
    Ok(Json(app.shop.update_product(id, patch).await?))
}
