//! Sales reports. Stores aggregate; this module fixes what a report means: which orders count
//! (confirmed ones: a cancelled sale is not a sale), which days a range covers, and that every
//! day of the range appears even when nothing sold.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::error::{FieldErrors, ShopError};
use crate::ids::ProductId;

/// Longest range one report may cover.
pub const REPORT_DAYS_MAX: i64 = 366;
const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportBy {
    Day,
    Product,
}

/// A parsed report request: whole days `from..=to` in the shop's local time, which is UTC
/// shifted by `utc_offset_minutes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesQuery {
    pub from: Date,
    pub to: Date,
    pub by: ReportBy,
    pub utc_offset_minutes: i32,
}

fn parse_date(raw: &str) -> Result<Date, String> {
    let refused = || "must be a date like 2026-11-25".to_owned();
    // `[year]` alone would take a sign (-0001, +2026); a shop's dates are plain four digits.
    if raw.len() != 10 || !raw.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(refused());
    }
    Date::parse(raw, &time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| refused())
}

/// Largest offset from UTC a shop may be at, in minutes either way.
pub const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;

impl SalesQuery {
    /// Parses a report request into `errors` (every bad field); `None` is a parameter the
    /// request lacks (or could not be read as its type, already reported).
    pub fn parse(
        errors: &mut FieldErrors,
        from: Option<&str>,
        to: Option<&str>,
        by: Option<&str>,
        utc_offset_minutes: Option<i32>,
    ) -> Option<Self> {
        let from = errors
            .require("from", from)
            .and_then(|f| errors.check("from", parse_date(f)));
        let to = errors.require("to", to).and_then(|t| errors.check("to", parse_date(t)));
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                errors.push("to", "must not be before from");
            } else if (to - from).whole_days() >= REPORT_DAYS_MAX {
                errors.push("to", format!("a report covers at most {REPORT_DAYS_MAX} days"));
            }
        }
        let by = match by.unwrap_or("day") {
            "day" => Some(ReportBy::Day),
            "product" => Some(ReportBy::Product),
            _ => {
                errors.push("by", "must be day or product");
                None
            }
        };
        let utc_offset_minutes = utc_offset_minutes.unwrap_or(0);
        if !(-UTC_OFFSET_MINUTES_MAX..=UTC_OFFSET_MINUTES_MAX).contains(&utc_offset_minutes) {
            errors.push(
                "tz_offset_minutes",
                format!("must be between -{UTC_OFFSET_MINUTES_MAX} and {UTC_OFFSET_MINUTES_MAX}"),
            );
        }
        let query = SalesQuery {
            from: from?,
            to: to?,
            by: by?,
            utc_offset_minutes,
        };
        errors.is_empty().then_some(query)
    }

    /// [`SalesQuery::parse`] of a request that has its dates, for callers that are not HTTP.
    pub fn from_dates(
        from: &str,
        to: &str,
        by: Option<&str>,
        utc_offset_minutes: Option<i32>,
    ) -> Result<Self, ShopError> {
        FieldErrors::collect(|e| Self::parse(e, Some(from), Some(to), by, utc_offset_minutes))
    }

    fn offset_ms(&self) -> i64 {
        i64::from(self.utc_offset_minutes) * 60_000
    }

    /// The half-open range of instants, in epoch ms, the report covers.
    pub fn range_ms(&self) -> (i64, i64) {
        let start = |d: Date| (d.to_julian_day() as i64 - EPOCH_JULIAN_DAY) * DAY_MS;
        (
            start(self.from) - self.offset_ms(),
            start(self.to) + DAY_MS - self.offset_ms(),
        )
    }

    /// The local day an instant falls on, as days since 1970-01-01.
    pub fn local_day(&self, at_ms: i64) -> i64 {
        (at_ms + self.offset_ms()).div_euclid(DAY_MS)
    }
}

const EPOCH_JULIAN_DAY: i64 = 2_440_588;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DaySales {
    /// `YYYY-MM-DD`, local to the shop.
    pub date: String,
    pub orders: u64,
    pub items: u64,
    pub revenue: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductSales {
    pub product_id: ProductId,
    /// The product's name in its latest sale within the report's range (a product renamed
    /// since is listed under the name it last sold under in the range).
    pub name: String,
    pub orders: u64,
    pub quantity: u64,
    pub revenue: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SalesReport {
    pub from: String,
    pub to: String,
    pub by: ReportBy,
    pub orders: u64,
    pub revenue: i64,
    /// Present when `by` is `day`: one row per day of the range, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<DaySales>>,
    /// Present when `by` is `product`: best sellers by revenue first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<ProductSales>>,
}

/// Sales of one local day (days since 1970-01-01), aggregated by a store over confirmed orders.
#[derive(Clone, Debug)]
pub struct DayTotals {
    pub day: i64,
    pub orders: u64,
    pub items: u64,
    pub revenue: i64,
}

fn date_of_day(day: i64) -> Date {
    Date::from_julian_day((day + EPOCH_JULIAN_DAY) as i32).expect("day within a parsed report range")
}

fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Builds the report from a store's aggregates of confirmed orders inside `query.range_ms()`:
/// per-day totals (always) and per-product totals (when `by` is product). Days without sales
/// are filled in with zeros; products are ranked by revenue.
pub fn build_sales_report(query: &SalesQuery, days: &[DayTotals], products: Vec<ProductSales>) -> SalesReport {
    let mut report = SalesReport {
        from: fmt_date(query.from),
        to: fmt_date(query.to),
        by: query.by,
        orders: days.iter().map(|d| d.orders).sum(),
        revenue: days.iter().map(|d| d.revenue).sum(),
        days: None,
        products: None,
    };
    match query.by {
        ReportBy::Day => {
            let first = query.local_day(query.range_ms().0);
            let last = query.local_day(query.range_ms().1 - 1);
            report.days = Some(
                (first..=last)
                    .map(|day| {
                        let found = days.iter().find(|d| d.day == day);
                        DaySales {
                            date: fmt_date(date_of_day(day)),
                            orders: found.map_or(0, |d| d.orders),
                            items: found.map_or(0, |d| d.items),
                            revenue: found.map_or(0, |d| d.revenue),
                        }
                    })
                    .collect(),
            );
        }
        ReportBy::Product => {
            let mut rows = products;
            rows.sort_by(|a, b| b.revenue.cmp(&a.revenue).then_with(|| a.name.cmp(&b.name)));
            report.products = Some(rows);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(day: i64, orders: u64, revenue: i64) -> DayTotals {
        DayTotals {
            day,
            orders,
            items: orders,
            revenue,
        }
    }

    #[test]
    fn a_report_lists_every_day_of_its_range_even_empty_ones() {
        let q = SalesQuery::from_dates("2026-11-24", "2026-11-26", None, None).unwrap();
        let first = q.local_day(q.range_ms().0);
        let r = build_sales_report(&q, &[day(first, 1, 600)], vec![]);
        let days = r.days.unwrap();
        assert_eq!(days.len(), 3);
        assert_eq!((days[0].date.as_str(), days[0].revenue), ("2026-11-24", 600));
        assert_eq!(days[2].revenue, 0);
        assert_eq!((r.orders, r.revenue), (1, 600));
    }

    #[test]
    fn local_days_follow_the_utc_offset() {
        let q = SalesQuery::from_dates("2026-11-25", "2026-11-25", None, Some(60)).unwrap();
        let (start, end) = q.range_ms();
        assert_eq!(end - start, DAY_MS);
        // 23:30 UTC on the 24th is 00:30 on the 25th at UTC+1.
        assert_eq!(q.local_day(start), q.local_day(start + 60_000));
        assert_eq!(q.local_day(start), q.local_day(end - 1));
    }

    #[test]
    fn product_report_ranks_by_revenue() {
        let q = SalesQuery::from_dates("2026-11-25", "2026-11-25", Some("product"), None).unwrap();
        let row = |id: &str, revenue| ProductSales {
            product_id: ProductId::parse(id).unwrap(),
            name: id.into(),
            orders: 1,
            quantity: 1,
            revenue,
        };
        let r = build_sales_report(&q, &[], vec![row("tea", 200), row("lemonade", 900)]);
        assert_eq!(r.products.unwrap()[0].product_id.as_str(), "lemonade");
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(SalesQuery::from_dates("2026-11-26", "2026-11-25", None, None).is_err());
        assert!(SalesQuery::from_dates("2025-01-01", "2026-11-25", None, None).is_err());
        assert!(SalesQuery::from_dates("yesterday", "2026-11-25", None, None).is_err());
        assert!(SalesQuery::from_dates("-001-01-01", "2026-11-25", None, None).is_err());
        assert!(SalesQuery::from_dates("2026-11-24", "+2026-11-25", None, None).is_err());
        assert!(SalesQuery::from_dates("2026-11-25", "2026-11-25", Some("hour"), None).is_err());
    }
}
