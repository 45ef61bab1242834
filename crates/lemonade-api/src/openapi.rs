//! The OpenAPI document, generated from the handlers' annotations. A committed copy lives at
//! `openapi.json` in the repository root; a test fails when it is stale.
//!
//! The handlers' annotations name what is particular to each endpoint (its success answers,
//! its own 404, 409 and 422 cases, and the links to the operations its answer leads to).
//! What every endpoint shares is added here, in one place, by [`Shared`]: the bearer token,
//! the problem answers every endpoint can give (401, 422, 503; 400, 413 and 415 with a body;
//! 404 with an id in the path), the schema of path ids, and the
//! `application/problem+json` media type of every problem. An endpoint added later gets them
//! without being told.

use std::collections::BTreeSet;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use lemonade_domain::ports::CursorKind;

use crate::routes::{PageParams, customers, orders, products, reports, stock, system};
use crate::schema::NamedSchema;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(title = "Lemonade shop API", description = "Orders, stock and customers of a small shop. Money is in minor currency units; ids sort by creation; errors are application/problem+json with a stable code; a request with several bad fields hears of all of them in one 422."),
    servers((url = "/api/v1")),
    paths(
        stock::list, stock::create, stock::get, stock::restock, stock::waste, stock::count, stock::moves,
        products::list, products::create, products::get, products::update,
        customers::list, customers::create, customers::get, customers::update, customers::anonymise, customers::orders, customers::export,
        orders::place, orders::list, orders::get, orders::cancel, orders::timeline,
        reports::sales,
        system::health, system::metrics, system::openapi,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&Shared)
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

/// The problem answers shared by endpoints: status, name in `components/responses`, and what
/// it means.
const SHARED: &[(&str, &str, &str)] = &[
    (
        "400",
        "MalformedJson",
        "`validation_failed`: the body is not well-formed JSON.",
    ),
    (
        "401",
        "Unauthorized",
        "`unauthorized`: the shop's access token is missing or wrong.",
    ),
    ("404", "NotFound", "`not_found`: nothing has this id."),
    (
        "413",
        "PayloadTooLarge",
        "`payload_too_large`: the body is larger than 64 KiB.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "`unsupported_media_type`: the body is not declared, once, as `application/json` (with no parameter but an optional `charset=utf-8`).",
    ),
    (
        "422",
        "ValidationFailed",
        "`validation_failed`: the request has bad fields; `errors` names every one of them: a body field or query parameter that is unknown, given more than once, of the wrong type or out of bounds, and a header the endpoint does not take.",
    ),
    (
        "503",
        "Unavailable",
        "`unavailable`: the shop cannot answer now (storage busy, a service down, the request took too long); retry after `Retry-After` seconds, with the same `Idempotency-Key`. Or, in the distributed mode, `clock_skew` (no `Retry-After`): one process's clock is further ahead of another's than `--max-clock-offset-ms` allows, and the call between them was refused; it fails until the machines' clocks are put right.",
    ),
];

/// From an answer to the operations it leads to, for clients and for a fuzzer's stateful
/// phase: (operation, status, link, target operation, its parameters, its body). Values are
/// OpenAPI runtime expressions.
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

const BY_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

const LINKS: &[LinkSpec] = &[
    (
        "create_ingredient",
        "201",
        "GetIngredient",
        "get_ingredient",
        BY_ID,
        None,
    ),
    (
        "create_ingredient",
        "201",
        "RestockIngredient",
        "restock_ingredient",
        BY_ID,
        None,
    ),
    (
        "create_ingredient",
        "201",
        "WasteIngredient",
        "waste_ingredient",
        BY_ID,
        None,
    ),
    (
        "create_ingredient",
        "201",
        "CountIngredient",
        "count_ingredient",
        BY_ID,
        None,
    ),
    (
        "create_ingredient",
        "201",
        "ListItsMoves",
        "list_moves",
        &[("ingredient_id", "$response.body#/id")],
        None,
    ),
    (
        "create_ingredient",
        "201",
        "MakeAProductOfIt",
        "create_product",
        &[],
        Some(r#"{"recipe": [{"ingredient_id": "$response.body#/id", "quantity": 1}]}"#),
    ),
    (
        "restock_ingredient",
        "200",
        "GetIngredient",
        "get_ingredient",
        &[("id", "$response.body#/ingredient/id")],
        None,
    ),
    ("create_product", "201", "GetProduct", "get_product", BY_ID, None),
    ("create_product", "201", "UpdateProduct", "update_product", BY_ID, None),
    (
        "create_product",
        "201",
        "OrderIt",
        "place_order",
        &[],
        Some(r#"{"lines": [{"product_id": "$response.body#/id", "quantity": 1}]}"#),
    ),
    ("update_product", "200", "GetProduct", "get_product", BY_ID, None),
    ("create_customer", "201", "GetCustomer", "get_customer", BY_ID, None),
    (
        "create_customer",
        "201",
        "UpdateCustomer",
        "update_customer",
        BY_ID,
        None,
    ),
    (
        "create_customer",
        "201",
        "AnonymiseCustomer",
        "anonymise_customer",
        BY_ID,
        None,
    ),
    (
        "create_customer",
        "201",
        "ListItsOrders",
        "list_customer_orders",
        BY_ID,
        None,
    ),
    (
        "create_customer",
        "201",
        "ExportCustomer",
        "export_customer",
        BY_ID,
        None,
    ),
    ("update_customer", "200", "GetCustomer", "get_customer", BY_ID, None),
    ("place_order", "201", "GetOrder", "get_order", BY_ID, None),
    ("place_order", "201", "CancelOrder", "cancel_order", BY_ID, None),
    ("place_order", "202", "GetOrder", "get_order", BY_ID, None),
    ("cancel_order", "200", "GetOrder", "get_order", BY_ID, None),
];

fn add_links(operation: &mut Operation) {
    let id = operation.operation_id.clone().unwrap_or_default();
    for (from, status, name, to, parameters, body) in LINKS.iter().filter(|l| l.0 == id) {
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
            panic!("link {name} from {from}: it documents no {status} answer");
        };
        let mut link = utoipa::openapi::link::LinkBuilder::new().operation_id(*to);
        for (parameter, value) in *parameters {
            link = link.parameter(*parameter, *value);
        }
        if let Some(body) = body {
            link = link.request_body(Some(
                serde_json::from_str::<serde_json::Value>(body).expect("link bodies are JSON"),
            ));
        }
        response.links.insert((*name).into(), RefOr::T(link.build()));
    }
}

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

/// Adds what every operation shares; see the module's documentation.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "bearer".into(),
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The shop's access token (`--token`). A shop that listens on loopback only may run without one; it then takes requests without it.",
                    ))
                    .build(),
            )),
        );
        for (name, schema) in crate::schema::NAMED {
            components.schemas.insert((*name).into(), RefOr::T(schema().into()));
        }
        for (status, name, description) in SHARED {
            let mut response = ResponseBuilder::new()
                .description(*description)
                .content(PROBLEM_JSON, problem_content());
            if *status == "503" {
                response = response.header(
                    "Retry-After",
                    utoipa::openapi::HeaderBuilder::new()
                        .schema(Some(crate::schema::retry_after()))
                        .description(Some("Seconds to wait before trying again."))
                        .build(),
                );
            }
            if *status == "401" {
                response = response.header(
                    "WWW-Authenticate",
                    utoipa::openapi::HeaderBuilder::new()
                        .schema(Some(crate::schema::www_authenticate()))
                        .build(),
                );
            }
            components.responses.insert((*name).into(), RefOr::T(response.build()));
        }
        doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);

        let mut operation_ids = BTreeSet::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(
                    operation_ids.insert(id.clone()),
                    "operation ids must be unique (links name them): {id:?} at {path}"
                );
                share(operation);
                add_links(operation);
            }
        }
        for (from, _, name, to, ..) in LINKS {
            assert!(operation_ids.contains(*from), "link {name}: no operation {from}");
            assert!(operation_ids.contains(*to), "link {name}: no operation {to}");
        }
    }
}

/// The schemas of query parameters, by name (each means the same wherever it appears).
const QUERY: &[NamedSchema] = &[
    ("limit", crate::schema::page_limit),
    ("q", crate::schema::search),
    ("status", crate::schema::order_status_filter),
    ("customer_id", crate::schema::id_filter),
    ("ingredient_id", crate::schema::id_filter),
    ("from", crate::schema::date),
    ("to", crate::schema::date),
    ("by", crate::schema::report_by),
    ("tz_offset_minutes", crate::schema::utc_offset_minutes),
    ("format", crate::schema::report_format),
];

/// The kind of cursor of each list, by operation: a list's `cursor` takes what its own
/// `next_cursor` holds. Every operation with a `cursor` must be here.
const CURSORS: &[(&str, CursorKind)] = &[
    ("list_ingredients", PageParams::CURSOR),
    ("list_products", PageParams::CURSOR),
    ("list_customer_orders", PageParams::CURSOR),
    ("list_customers", customers::CustomerSearch::CURSOR),
    ("list_orders", orders::OrderParams::CURSOR),
    ("list_moves", stock::MovesParams::CURSOR),
];

/// The schema of a query parameter of the operation `operation_id`.
fn query_schema(operation_id: &str, name: &str) -> utoipa::openapi::schema::Object {
    if name == "cursor" {
        let (_, kind) = CURSORS
            .iter()
            .find(|(id, _)| *id == operation_id)
            .unwrap_or_else(|| panic!("list {operation_id} has no cursor kind in CURSORS"));
        return crate::schema::cursor(*kind);
    }
    let (_, schema) = QUERY
        .iter()
        .find(|(known, _)| name == *known)
        .unwrap_or_else(|| panic!("query parameter {name} has no schema in QUERY"));
    schema()
}

/// The schemas of request headers, by name.
const HEADERS: &[NamedSchema] = &[("Idempotency-Key", crate::schema::idempotency_key)];

/// What one operation gets from [`SHARED`].
fn share(operation: &mut Operation) {
    let mut has_path_id = false;
    let id = operation.operation_id.clone().unwrap_or_default();
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else { continue };
        match parameter.parameter_in {
            ParameterIn::Path => {
                has_path_id = true;
                parameter.schema = Some(RefOr::T(crate::schema::id().into()));
            }
            ParameterIn::Query | ParameterIn::QueryString => {
                parameter.schema = Some(RefOr::T(query_schema(&id, &parameter.name).into()));
            }
            ParameterIn::Header => {
                if let Some((_, schema)) = HEADERS
                    .iter()
                    .find(|(name, _)| parameter.name.eq_ignore_ascii_case(name))
                {
                    parameter.schema = Some(RefOr::T(schema().into()));
                }
            }
            ParameterIn::Cookie => {}
        }
    }
    let has_body = operation.request_body.is_some();
    if let Some(RefOr::T(body)) = &mut operation.request_body {
        require(body);
    }
    let responses = &mut operation.responses.responses;
    // Problems an annotation named as `body = Problem` are problem+json, not plain JSON.
    for response in responses.values_mut() {
        if let RefOr::T(response) = response {
            problem_media_type(response);
        }
    }
    let mut add = |status: &str| {
        let (_, name, _) = SHARED.iter().find(|(s, ..)| *s == status).expect("a shared status");
        match responses.get_mut(status) {
            None => {
                responses.insert(status.into(), RefOr::Ref(Ref::from_response_name(*name)));
            }
            // An answer of its own (the health report's 503) that a problem can also take.
            Some(RefOr::T(own)) => {
                own.content
                    .entry(PROBLEM_JSON.into())
                    .or_insert_with(|| RefOr::T(problem_content()));
            }
            Some(RefOr::Ref(_)) => {}
        }
    };
    add("401");
    add("503");
    // Any endpoint refuses a query parameter or a header it does not take.
    add("422");
    if has_body {
        for status in ["400", "413", "415"] {
            add(status);
        }
    }
    if has_path_id {
        add("404");
    }
}

/// A body an operation documents is one it needs (sending none is malformed JSON), unless
/// its annotation names it `Option<T>` (a cancellation's empty object). utoipa writes such a
/// body as `T` or `null`, without `required`; but a body left out is not a JSON `null` (which
/// is refused like any body that is not an object): it becomes `T`, not required.
fn require(body: &mut RequestBody) {
    if body.required.is_some() {
        return;
    }
    body.required = Some(utoipa::openapi::Required::False);
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else { continue };
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let not_null: Vec<_> = one_of
            .items
            .iter()
            .filter(|s| !matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)))
            .cloned()
            .collect();
        if let [schema] = &not_null[..] {
            content.schema = Some(schema.clone());
        }
    }
}

/// Moves a `Problem` documented as `application/json` to `application/problem+json`.
fn problem_media_type(response: &mut Response) {
    let is_problem = |c: &RefOr<Content>| matches!(c, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")));
    if let Some(content) = response.content.get("application/json")
        && is_problem(content)
    {
        let content = response.content.shift_remove("application/json").expect("just seen");
        response.content.insert(PROBLEM_JSON.into(), content);
    }
}

#[cfg(test)]
mod tests {
    use lemonade_domain::order::LINE_QUANTITY_MAX;
    use lemonade_domain::ports::PAGE_LIMIT_MAX;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(&super::json()).unwrap()
    }

    /// Every (method, path, operation) of the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                all.push((method.clone(), path.clone(), op.clone()));
            }
        }
        all
    }

    /// A response, with a `$ref` to `components/responses` followed.
    fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
        match response["$ref"].as_str() {
            Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
            None => response,
        }
    }

    #[test]
    fn every_problem_is_documented_as_problem_json_and_nothing_else_is() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                for (media, content) in resolve(&doc, response)["content"].as_object().into_iter().flatten() {
                    let is_problem = content["schema"]["$ref"] == "#/components/schemas/Problem";
                    assert_eq!(
                        is_problem,
                        media == super::PROBLEM_JSON,
                        "{method} {path} {status}: {media}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_endpoint_documents_the_problems_it_can_answer() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let statuses: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut expected = vec!["401", "422", "503"];
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                expected.push("404");
            }
            for status in expected {
                assert!(
                    statuses.contains(&status),
                    "{method} {path} lacks {status}: {statuses:?}"
                );
            }
        }
    }

    #[test]
    fn bounds_are_the_parsers_own() {
        let doc = document();
        let limit = doc["paths"]["/products"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()["schema"]
            .clone();
        assert_eq!(
            (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
            (Some(1), Some(i64::from(PAGE_LIMIT_MAX)))
        );
        let quantity = &doc["components"]["schemas"]["OrderLineBody"]["properties"]["quantity"];
        assert_eq!(quantity["maximum"].as_i64(), Some(LINE_QUANTITY_MAX));
        let id = doc["paths"]["/orders/{id}"]["get"]["parameters"][0]["schema"]["pattern"].as_str();
        assert_eq!(id, Some("^[0-9A-Za-z_-]{1,64}$"));
    }

    #[test]
    fn every_text_field_names_the_one_schema_of_its_kind() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (body, field, kind) in [
            ("CreateIngredient", "name", "Name"),
            ("CreateProduct", "name", "Name"),
            ("PatchProduct", "name", "Name"),
            ("NewCustomerBody", "name", "Name"),
            ("CustomerPatch", "name", "Name"),
            ("NewCustomerBody", "email", "Email"),
            ("CustomerPatch", "phone", "Phone"),
            ("StockChange", "note", "Note"),
            ("StockCount", "note", "Note"),
        ] {
            let property = &schemas[body]["properties"][field];
            assert_eq!(
                property["$ref"],
                format!("#/components/schemas/{kind}"),
                "{body}.{field}"
            );
        }
        assert_eq!(schemas["Name"]["pattern"], crate::schema::name_pattern());
        assert_eq!(schemas["Phone"]["pattern"], crate::schema::phone_pattern());
    }

    #[test]
    fn operation_ids_are_unique_and_links_name_real_operations() {
        // `Shared` asserts both while it builds the document.
        let doc = document();
        let link = &doc["paths"]["/products"]["post"]["responses"]["201"]["links"]["OrderIt"];
        assert_eq!(link["operationId"], "place_order", "{link}");
    }

    /// The `cursor` of every list documents exactly what the list's parser takes.
    #[test]
    fn each_lists_cursor_pattern_is_what_its_parser_takes() {
        let doc = document();
        let long_id = "a".repeat(64);
        let candidates = [
            "",
            "zz",
            "-5",
            "5",
            "0000000000000042",
            "999999999999999999",
            "1234567890123456789",
            "1.5",
            "+5",
            "not a cursor",
            "é",
            &long_id,
            "a_b-C",
        ];
        let mut lists = 0;
        for (method, path, op) in operations(&doc) {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let Some(cursor) = params.iter().find(|p| p["name"] == "cursor") else {
                continue;
            };
            lists += 1;
            let id = op["operationId"].as_str().unwrap();
            let (_, kind) = super::CURSORS.iter().find(|(list, _)| *list == id).unwrap();
            let pattern = regex::Regex::new(cursor["schema"]["pattern"].as_str().unwrap()).unwrap();
            let max = cursor["schema"]["maxLength"].as_u64().unwrap() as usize;
            for c in candidates {
                let documented = pattern.is_match(c) && c.chars().count() <= max;
                assert_eq!(documented, c.is_empty() || kind.accepts(c), "{method} {path}: {c:?}");
            }
        }
        assert_eq!(lists, super::CURSORS.len());
    }
}
