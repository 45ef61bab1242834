//! Inputs an endpoint does not declare are refused, not ignored: a query parameter sent to an
//! endpoint that takes none, and a header that is an API parameter (`Idempotency-Key`) sent
//! to an endpoint that does not take it (a client that believes its product creation is
//! idempotent should hear that it is not). What each endpoint takes is read from the OpenAPI
//! document, which is built from the handlers' own parameter structs, so the two cannot
//! disagree.
//!
//! Endpoints that take query parameters read them through [`crate::extract::Query`], which
//! refuses the unknown ones itself, together with what is wrong with the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lemonade_domain::ShopError;
use lemonade_domain::error::FieldErrors;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{PathItem, RefOr};

use crate::error::ApiError;

/// Where the API's paths live; the document's paths are relative to it.
pub const API_PREFIX: &str = "/api/v1";

/// The error of a header the endpoint does not take.
pub const HEADER_NOT_TAKEN: &str = "this endpoint does not take this header";

/// What one operation declares.
#[derive(Default)]
struct Declared {
    takes_query: bool,
    /// Its header parameters, lowercase.
    headers: BTreeSet<String>,
}

struct Table {
    /// By (method, path as in the document), lowercase method.
    operations: HashMap<(String, String), Declared>,
    /// Every header that is a parameter of some operation: lowercase, and as documented.
    parameter_headers: BTreeMap<String, String>,
}

fn operations(item: &PathItem) -> [(&'static str, &Option<Operation>); 5] {
    [
        ("get", &item.get),
        ("post", &item.post),
        ("put", &item.put),
        ("patch", &item.patch),
        ("delete", &item.delete),
    ]
}

/// Builds the table of what each endpoint declares now, so that no request waits for it: it
/// comes from the OpenAPI document, whose text patterns walk every code point once (2 s in a
/// debug build, far less optimised; once a process).
pub fn warm() {
    table();
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let doc = crate::openapi::ApiDoc::openapi();
        let mut table = Table {
            operations: HashMap::new(),
            parameter_headers: BTreeMap::new(),
        };
        for (path, item) in &doc.paths.paths {
            for (method, operation) in operations(item) {
                let Some(operation) = operation else { continue };
                let mut declared = Declared::default();
                for parameter in operation.parameters.iter().flatten() {
                    let RefOr::T(parameter) = parameter else { continue };
                    match parameter.parameter_in {
                        ParameterIn::Query | ParameterIn::QueryString => declared.takes_query = true,
                        ParameterIn::Header => {
                            let lower = parameter.name.to_ascii_lowercase();
                            declared.headers.insert(lower.clone());
                            table.parameter_headers.insert(lower, parameter.name.clone());
                        }
                        ParameterIn::Path | ParameterIn::Cookie => {}
                    }
                }
                table.operations.insert((method.to_owned(), path.clone()), declared);
            }
        }
        table
    })
}

/// What is wrong with a request's undeclared inputs, for the operation at `path` (as the
/// document writes it). Empty when nothing is, or when the document does not have the
/// operation (the router answers it: 404, 405).
fn undeclared(method: &str, path: &str, request: &Request) -> FieldErrors {
    let mut errors = FieldErrors::default();
    let table = table();
    let method = if method == "head" { "get" } else { method };
    let Some(declared) = table.operations.get(&(method.to_owned(), path.to_owned())) else {
        return errors;
    };
    if !declared.takes_query {
        crate::query::read(request.uri().query().unwrap_or(""), &[], &mut errors);
    }
    for (header, documented) in &table.parameter_headers {
        if request.headers().contains_key(header.as_str()) && !declared.headers.contains(header) {
            errors.push(documented.clone(), HEADER_NOT_TAKEN);
        }
    }
    errors
}

/// Middleware for the API's routes (a route layer: it runs once a route matched).
pub async fn refuse_undeclared(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    if let Some(matched) = matched {
        let path = matched.strip_prefix(API_PREFIX).unwrap_or(&matched);
        let method = request.method().as_str().to_ascii_lowercase();
        let errors = undeclared(&method, path, &request);
        if !errors.is_empty() {
            return ApiError::from(ShopError::from(errors)).into_response();
        }
    }
    next.run(request).await
}
