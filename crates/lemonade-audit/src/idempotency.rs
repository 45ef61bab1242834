//! Idempotency records: every record points at a real result, an order that exists and was
//! answered with the points it has (unless cancelled since), or a refusal that can be read.

use std::collections::HashMap;

use crate::rule::{Audit, Finding, Group, Rule, names, rows};

pub(crate) const GROUP: Group = Group { run, rules };

/// An idempotency record, with the status and points of the order it names, if that exists.
struct Record {
    key: String,
    order_id: Option<String>,
    answered_points: Option<i64>,
    rejection: Option<String>,
    order: Option<(String, i64)>,
}

const RECORD_RULES: &[Rule<Record>] = &[Rule {
    name: "idempotency-record-is-real",
    check: record_is_real,
}];

fn record_is_real(r: &Record) -> Option<Finding> {
    let subject = format!("key {}", r.key);
    let detail = match (&r.order_id, r.answered_points, &r.rejection) {
        (Some(id), Some(points), None) => match &r.order {
            None => format!("order {id} does not exist"),
            Some((status, now_points)) if status != "cancelled" && *now_points != points => {
                format!("answered with {points} points, the order has {now_points}")
            }
            Some(_) => return None,
        },
        (None, None, Some(json)) => {
            let e = serde_json::from_str::<lemonade_domain::ShopError>(json).err()?;
            format!("unreadable refusal: {e}")
        }
        _ => "neither one order nor one refusal".to_owned(),
    };
    Some(Finding::new(subject, detail))
}

fn read_records(audit: &Audit<'_>) -> rusqlite::Result<Vec<Record>> {
    let orders = audit.facts.orders(audit.conn)?;
    let by_id: HashMap<&str, (&str, i64)> = orders
        .iter()
        .map(|o| (o.id.as_str(), (o.status.as_str(), o.points)))
        .collect();
    rows(
        audit.conn,
        "SELECT key, order_id, answered_points, rejection FROM idempotency_keys",
        |r| {
            let order_id: Option<String> = r.get(1)?;
            let order = order_id.as_deref().and_then(|id| by_id.get(id));
            Ok(Record {
                key: r.get(0)?,
                order: order.map(|&(status, points)| (status.to_owned(), points)),
                order_id,
                answered_points: r.get(2)?,
                rejection: r.get(3)?,
            })
        },
    )
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    let records = read_records(audit)?;
    audit.report.idempotency_keys = records.len() as u64;
    audit.report.check_rows(&records, RECORD_RULES);
    Ok(())
}

fn rules() -> Vec<&'static str> {
    names(RECORD_RULES).collect()
}
