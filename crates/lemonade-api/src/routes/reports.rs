use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::report::{SalesQuery, SalesReport};
use serde::Deserialize;

use lemonade_domain::error::FieldErrors;

use super::{integer_param, parsed};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::Query;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SalesParams {
    /// First day, `YYYY-MM-DD`, in the shop's local time.
    #[param(required = true)]
    pub from: Option<String>,
    /// Last day, inclusive: not before `from`, and at most 366 days after it.
    #[param(required = true)]
    pub to: Option<String>,
    /// Totals per `day` (default) or per `product`.
    pub by: Option<String>,
    /// The shop's offset from UTC in minutes (east positive). Default 0.
    pub tz_offset_minutes: Option<String>,
    /// `csv` for a CSV download; without it, `Accept: text/csv` does the same.
    pub format: Option<String>,
}

/// A CSV cell: quoted when it must be, and never read as a formula by a spreadsheet.
fn cell(raw: &str) -> String {
    let safe = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

pub fn to_csv(report: &SalesReport) -> String {
    let mut out = String::new();
    if let Some(days) = &report.days {
        out.push_str("date,orders,items,revenue_minor_units\n");
        for d in days {
            out.push_str(&format!("{},{},{},{}\n", d.date, d.orders, d.items, d.revenue));
        }
    }
    if let Some(products) = &report.products {
        out.push_str("product_id,product,orders,quantity,revenue_minor_units\n");
        for p in products {
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                p.product_id,
                cell(&p.name),
                p.orders,
                p.quantity,
                p.revenue
            ));
        }
    }
    out
}

/// Whether to answer CSV: `format`, else the `Accept` header. `None` (recorded) for a bad
/// `format`.
fn wants_csv(errors: &mut FieldErrors, params: &SalesParams, headers: &HeaderMap) -> Option<bool> {
    match params.format.as_deref() {
        Some("csv") => Some(true),
        Some("json") => Some(false),
        Some(_) => {
            errors.push("format", "must be json or csv");
            None
        }
        None => {
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
            Some(accept.contains("text/csv"))
        }
    }
}

/// Sales of confirmed orders by day or by product.
#[utoipa::path(get, path = "/reports/sales", tag = "reports", operation_id = "sales_report", params(SalesParams),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or `Accept: text/csv`", content(
        (SalesReport = "application/json"),
        (String = "text/csv")))))]
pub async fn sales(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SalesParams>,
) -> Result<Response, ApiError> {
    let (query, csv) = parsed(|e| {
        let offset = integer_param(e, "tz_offset_minutes", q.tz_offset_minutes.as_deref());
        let query = SalesQuery::parse(e, q.from.as_deref(), q.to.as_deref(), q.by.as_deref(), offset.flatten());
        let csv = wants_csv(e, &q, &headers);
        offset?;
        Some((query?, csv?))
    })?;
    let report = app.shop.sales_report(query).await?;
    if !csv {
        return Ok(Json(report).into_response());
    }
    let filename = format!(
        "attachment; filename=\"sales-by-{}-{}-to-{}.csv\"",
        q.by.as_deref().unwrap_or("day"),
        report.from,
        report.to
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&filename).expect("dates are header-safe"),
            ),
        ],
        to_csv(&report),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(cell("Lemonade"), "Lemonade");
        assert_eq!(cell("Tea, iced"), "\"Tea, iced\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
