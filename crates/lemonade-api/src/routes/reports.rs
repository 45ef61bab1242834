use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::report::{SalesQuery, SalesReport};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::Query;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SalesParams {
    /// First day, `YYYY-MM-DD`, in the shop's local time.
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// `day` (default) or `product`.
    pub by: Option<String>,
    /// The shop's offset from UTC in minutes (east positive). Default 0.
    pub tz_offset_minutes: Option<i32>,
    /// `csv` for a CSV download; `Accept: text/csv` does the same.
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

fn wants_csv(params: &SalesParams, headers: &HeaderMap) -> Result<bool, ApiError> {
    match params.format.as_deref() {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(_) => {
            return Err(lemonade_domain::ShopError::validation("format", "must be json or csv").into());
        }
        None => {}
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    Ok(accept.contains("text/csv"))
}

/// Sales of confirmed orders by day or by product.
#[utoipa::path(get, path = "/reports/sales", tag = "reports", params(SalesParams),
    responses((status = 200, body = SalesReport, description = "JSON, or CSV with Accept: text/csv"), (status = 422, body = Problem)))]
pub async fn sales(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SalesParams>,
) -> Result<Response, ApiError> {
    let query = SalesQuery::parse(&q.from, &q.to, q.by.as_deref(), q.tz_offset_minutes)?;
    let csv = wants_csv(&q, &headers)?;
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
