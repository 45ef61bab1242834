use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::report::{SalesQuery, SalesReport};
use serde::Deserialize;

use lemonade_domain::error::FieldErrors;

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

/// Whether to answer CSV: `format`, else the `Accept` header when it prefers `text/csv` to
/// `application/json` (JSON when it likes both as much, or neither). `None` (recorded) for a
/// bad `format`.
fn wants_csv(errors: &mut FieldErrors, params: &SalesParams, headers: &HeaderMap) -> Option<bool> {
    match params.format.as_deref() {
        Some("csv") => Some(true),
        Some("json") => Some(false),
        Some(_) => {
            errors.push("format", "must be json or csv");
            None
        }
        None => Some(quality(headers, "text", "csv") > quality(headers, "application", "json")),
    }
}

/// How much the request's `Accept` headers (all of them, as one list) want `type_/subtype`
/// (RFC 9110 §12.5.1): the weight of the most specific range that matches it, 0 when none
/// does, 1 with no `Accept` at all. A range that does not parse, or whose weight does not,
/// matches nothing.
fn quality(headers: &HeaderMap, type_: &str, subtype: &str) -> f32 {
    let mut ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .peekable();
    if ranges.peek().is_none() {
        return 1.0;
    }
    let mut best: Option<(u8, f32)> = None;
    for range in ranges {
        let Ok(range) = range.parse::<mime::Mime>() else {
            continue;
        };
        let specificity = match (range.type_().as_str(), range.subtype().as_str()) {
            (t, s) if t == type_ && s == subtype => 2,
            (t, "*") if t == type_ => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        let weight = match range.get_param("q") {
            None => 1.0,
            Some(q) => match q.as_str().parse::<f32>() {
                Ok(q) if (0.0..=1.0).contains(&q) => q,
                _ => continue,
            },
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, weight));
        }
    }
    best.map_or(0.0, |(_, weight)| weight)
}

/// Sales of confirmed orders by day or by product.
#[utoipa::path(get, path = "/reports/sales", tag = "reports", operation_id = "sales_report", params(SalesParams),
    responses((status = 200, description = "JSON, or CSV with `format=csv` or an `Accept` that prefers `text/csv` to `application/json` (`Accept: text/csv`)", content(
        (SalesReport = "application/json"),
        (String = "text/csv")))))]
pub async fn sales(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Query<SalesParams>,
) -> Result<Response, ApiError> {
    let mut by = None;
    let (query, csv) = params.parse(|e, q| {
        by = q.by.clone();
        let offset = crate::query::integer(e, "tz_offset_minutes", q.tz_offset_minutes.as_deref());
        // Beyond i32 is beyond the range the parser names, which it then refuses.
        let minutes = offset
            .flatten()
            .map(|o| i32::try_from(o).unwrap_or(if o < 0 { i32::MIN } else { i32::MAX }));
        let query = SalesQuery::parse(e, q.from.as_deref(), q.to.as_deref(), q.by.as_deref(), minutes);
        let csv = wants_csv(e, q, &headers);
        offset?;
        Some((query?, csv?))
    })?;
    let report = app.shop.sales_report(query).await?;
    if !csv {
        return Ok(Json(report).into_response());
    }
    let filename = format!(
        "attachment; filename=\"sales-by-{}-{}-to-{}.csv\"",
        by.as_deref().unwrap_or("day"),
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
    use axum::http::{HeaderMap, header};

    use super::{cell, quality};

    #[test]
    fn csv_is_answered_when_accept_prefers_it_to_json() {
        let wants = |accepts: &[&str]| {
            let mut headers = HeaderMap::new();
            for a in accepts {
                headers.append(header::ACCEPT, a.parse().unwrap());
            }
            quality(&headers, "text", "csv") > quality(&headers, "application", "json")
        };
        assert!(wants(&["text/csv"]));
        assert!(wants(&["text/*"]));
        assert!(wants(&["application/json;q=0.5, text/csv"]));
        assert!(
            wants(&["application/json;q=0.5", "text/csv"]),
            "every Accept header counts"
        );
        assert!(wants(&["*/*;q=0.1, text/csv"]));
        assert!(!wants(&[]));
        assert!(!wants(&["*/*"]));
        assert!(!wants(&["text/csv;q=0"]));
        assert!(!wants(&["text/csv, application/json"]), "a tie is JSON, the default");
        assert!(!wants(&["text/csvx"]));
        assert!(!wants(&["text/csv;q=2"]), "a weight out of range counts for nothing");
        assert!(
            !wants(&["text/csv;q=0.5, text/*;q=1, application/json;q=0.6"]),
            "the most specific range wins"
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(cell("Lemonade"), "Lemonade");
        assert_eq!(cell("Tea, iced"), "\"Tea, iced\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
