use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lemonade_domain::catalog::{NewProduct, Product, ProductPatch, RawRecipeItem};
use lemonade_domain::ids::ProductId;
use lemonade_domain::ports::Page;
use serde::Serialize;

use lemonade_domain::error::FieldErrors;

use super::{PageParams, path_id, with_catalog_refs};
use crate::body::{self, Reader};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};
use crate::{AppState, schema};

/// One ingredient of a recipe: how much of it one unit of the product takes.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipeItemBody {
    #[schema(schema_with = schema::id)]
    pub ingredient_id: String,
    #[schema(schema_with = schema::quantity)]
    pub quantity: i64,
}

/// A new product. Each ingredient of the recipe must exist (422 on the item otherwise).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Mint lemonade", "price": 400, "recipe": [{"ingredient_id": "lemons", "quantity": 2}]}))]
pub struct CreateProduct {
    /// Stored as a person reads it (NFC, one kind of space, no invisible characters, trimmed;
    /// at most 200 characters, refused when nothing in it is visible). Unique as a person
    /// reads it: another name that differs only in case, composition, invisible characters or
    /// kinds of space is the same name.
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// In minor currency units.
    #[schema(schema_with = schema::price)]
    pub price: i64,
    /// At most 20 ingredients, each once.
    #[schema(max_items = 20)]
    pub recipe: Vec<RecipeItemBody>,
    /// Default (and null) true.
    pub active: Option<bool>,
}

/// A change to a product: any of its fields, at least one.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, example = json!({"price": 450}))]
pub struct PatchProduct {
    #[schema(schema_with = schema::name, required = false)]
    pub name: String,
    #[schema(schema_with = schema::price, required = false)]
    pub price: i64,
    #[schema(max_items = 20, required = false)]
    pub recipe: Vec<RecipeItemBody>,
    #[schema(required = false)]
    pub active: bool,
}

fn recipe_item(r: &mut Reader) -> RawRecipeItem {
    RawRecipeItem {
        ingredient_id: r.string("ingredient_id"),
        quantity: r.integer("quantity"),
    }
}

#[utoipa::path(get, path = "/products", tag = "products", operation_id = "list_products", params(PageParams),
    responses((status = 200, body = Page<Product>)))]
pub async fn list(State(app): State<AppState>, query: Query<PageParams>) -> Result<Json<Page<Product>>, ApiError> {
    Ok(Json(app.shop.list_products(query.parse(|e, q| q.parse(e))?).await?))
}

#[utoipa::path(post, path = "/products", tag = "products", operation_id = "create_product", request_body = CreateProduct,
    responses((status = 201, body = Product), (status = 409, body = Problem, description = "`conflict`: another product has this name")))]
pub async fn create(State(app): State<AppState>, JsonBody(body): JsonBody) -> Result<impl IntoResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let read = body::read(body, &mut errors, |r| {
        (
            r.string("name"),
            r.integer("price"),
            r.objects("recipe", recipe_item),
            r.optional_boolean("active"),
        )
    });
    let (name, price, recipe, active) = read.unwrap_or_default();
    let parsed = NewProduct::parse(&mut errors, name.as_deref(), price, recipe.as_deref(), active);
    let new = with_catalog_refs(&app, errors, parsed).await?;
    Ok((StatusCode::CREATED, Json(app.shop.create_product(new).await?)))
}

#[utoipa::path(get, path = "/products/{id}", tag = "products", operation_id = "get_product",
    responses((status = 200, body = Product)))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Product>, ApiError> {
    let id = path_id(&id, ProductId::parse, "product")?;
    Ok(Json(app.shop.get_product(id).await?))
}

#[utoipa::path(patch, path = "/products/{id}", tag = "products", operation_id = "update_product", request_body = PatchProduct,
    responses((status = 200, body = Product), (status = 409, body = Problem, description = "`conflict`: another product has this name")))]
pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Product>, ApiError> {
    let id = path_id(&id, ProductId::parse, "product")?;
    let mut errors = FieldErrors::default();
    let read = body::read(body, &mut errors, |r| {
        (
            r.string("name"),
            r.integer("price"),
            r.objects("recipe", recipe_item),
            r.boolean("active"),
        )
    });
    let (name, price, recipe, active) = read.unwrap_or_default();
    let parsed = ProductPatch::parse(&mut errors, &id, name.as_deref(), price, recipe.as_deref(), active);
    let patch = with_catalog_refs(&app, errors, parsed).await?;
    Ok(Json(app.shop.update_product(id, patch).await?))
}
