//! The OpenAPI document, generated from the handlers' annotations. A committed copy lives at
//! `openapi.json` in the repository root; a test fails when it is stale.

use utoipa::OpenApi;

use crate::routes::{customers, orders, products, reports, stock, system};

#[derive(OpenApi)]
#[openapi(
    info(title = "Lemonade shop API", description = "Orders, stock and customers of a small shop. Money is in minor currency units; ids sort by creation; errors are application/problem+json with a stable code."),
    servers((url = "/api/v1")),
    paths(
        stock::list, stock::create, stock::get, stock::restock, stock::waste, stock::count, stock::moves,
        products::list, products::create, products::get, products::update,
        customers::list, customers::create, customers::get, customers::update, customers::anonymise, customers::orders, customers::export,
        orders::place, orders::list, orders::get, orders::cancel,
        reports::sales,
        system::health, system::metrics, system::openapi,
    ),
    components(schemas(crate::error::Problem))
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline, byte for byte what is committed.
pub fn json() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    s.push('\n');
    s
}
