//! Orders: each has lines and the total of its lines, took from stock what the recipe
//! versions of its lines say, gave it back if cancelled (and kept no points), holds no stock
//! while unfinished, and earns points only for a customer.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use crate::rule::{Audit, Finding, Group, Rule, names, rows};

pub(crate) const GROUP: Group = Group { run, rules };

/// An order as stored.
#[derive(Clone)]
pub(crate) struct Order {
    pub id: String,
    pub status: String,
    pub customer: Option<String>,
    pub total: i64,
    pub points: i64,
}

/// Every order as stored.
pub(crate) fn read_orders(conn: &Connection) -> rusqlite::Result<Vec<Order>> {
    rows(conn, "SELECT id, status, customer_id, total, points FROM orders", |r| {
        Ok(Order {
            id: r.get(0)?,
            status: r.get(1)?,
            customer: r.get(2)?,
            total: r.get(3)?,
            points: r.get(4)?,
        })
    })
}

/// An order line with the recipe version it was sold with, as read (`Err`: why it cannot
/// be read).
struct Line {
    order: String,
    quantity: i64,
    unit_price: i64,
    recipe: Result<Vec<(String, i64)>, String>,
}

const LINE_RULES: &[Rule<Line>] = &[Rule {
    name: "order-line-recipe-readable",
    check: recipe_readable,
}];

fn recipe_readable(l: &Line) -> Option<Finding> {
    let e = l.recipe.as_ref().err()?;
    Some(Finding::new(format!("order {}", l.order), e))
}

/// An order with what its lines and the ledger say of it. Stock maps are by ingredient id.
struct Sold {
    order: Order,
    /// The sum of its lines' quantity × unit price, and how many lines it has.
    line_total: i64,
    line_count: i64,
    /// What its lines' recipes take from stock (negative), leaving out what nets to zero.
    expected: BTreeMap<String, i64>,
    /// Its sale moves, and its cancel moves.
    sold: BTreeMap<String, i64>,
    returned: BTreeMap<String, i64>,
}

impl Sold {
    fn subject(&self) -> String {
        format!("order {}", self.order.id)
    }

    fn is(&self, status: &str) -> bool {
        self.order.status == status
    }

    /// The sale moves, reversed: what a cancel gives back.
    fn reversed(&self) -> BTreeMap<String, i64> {
        self.sold.iter().map(|(k, v)| (k.clone(), -v)).collect()
    }
}

const ORDER_RULES: &[Rule<Sold>] = &[
    Rule {
        name: "order-has-lines",
        check: has_lines,
    },
    Rule {
        name: "order-total-equals-lines",
        check: total_equals_lines,
    },
    Rule {
        name: "confirmed-order-took-its-recipe",
        check: confirmed_took_its_recipe,
    },
    Rule {
        name: "confirmed-order-not-returned",
        check: confirmed_not_returned,
    },
    Rule {
        name: "cancelled-order-took-its-recipe",
        check: cancelled_took_its_recipe,
    },
    Rule {
        name: "cancelled-order-returned-its-stock",
        check: cancelled_returned_its_stock,
    },
    Rule {
        name: "cancelled-order-has-no-points",
        check: cancelled_has_no_points,
    },
    Rule {
        name: "unfinished-order-holds-no-stock",
        check: unfinished_holds_no_stock,
    },
    Rule {
        name: "points-need-a-customer",
        check: points_need_a_customer,
    },
];

fn has_lines(o: &Sold) -> Option<Finding> {
    (o.line_count == 0).then(|| Finding::new(o.subject(), "no lines"))
}

fn total_equals_lines(o: &Sold) -> Option<Finding> {
    let (total, line_total) = (o.order.total, o.line_total);
    (line_total != total).then(|| Finding::new(o.subject(), format!("total {total}, lines sum {line_total}")))
}

fn confirmed_took_its_recipe(o: &Sold) -> Option<Finding> {
    o.is("confirmed").then(|| took_its_recipe(o)).flatten()
}

fn cancelled_took_its_recipe(o: &Sold) -> Option<Finding> {
    o.is("cancelled").then(|| took_its_recipe(o)).flatten()
}

/// A confirmed or cancelled order's sale moves are what its recipes say.
fn took_its_recipe(o: &Sold) -> Option<Finding> {
    let (sold, expected) = (&o.sold, &o.expected);
    (sold != expected).then(|| Finding::new(o.subject(), format!("sale moves {sold:?}, recipe says {expected:?}")))
}

fn confirmed_not_returned(o: &Sold) -> Option<Finding> {
    let returned = &o.returned;
    (o.is("confirmed") && !returned.is_empty()).then(|| Finding::new(o.subject(), format!("cancel moves {returned:?}")))
}

fn cancelled_returned_its_stock(o: &Sold) -> Option<Finding> {
    let (sold, returned) = (&o.sold, &o.returned);
    (o.is("cancelled") && *returned != o.reversed())
        .then(|| Finding::new(o.subject(), format!("sale moves {sold:?}, cancel moves {returned:?}")))
}

fn cancelled_has_no_points(o: &Sold) -> Option<Finding> {
    let points = o.order.points;
    (o.is("cancelled") && points != 0).then(|| Finding::new(o.subject(), format!("points {points}")))
}

/// Pending and failed orders hold no stock: whatever a saga took it gave back.
fn unfinished_holds_no_stock(o: &Sold) -> Option<Finding> {
    if o.is("confirmed") || o.is("cancelled") {
        return None;
    }
    let (sold, returned) = (&o.sold, &o.returned);
    let net: i64 = sold.values().sum::<i64>() + returned.values().sum::<i64>();
    let holds =
        !returned.is_empty() && *returned != o.reversed() || (returned.is_empty() && !sold.is_empty()) || net != 0;
    holds.then(|| {
        Finding::new(
            format!("{} order {}", o.order.status, o.order.id),
            format!("sale {sold:?}, cancel {returned:?}"),
        )
    })
}

fn points_need_a_customer(o: &Sold) -> Option<Finding> {
    let points = o.order.points;
    (o.order.customer.is_none() && points != 0)
        .then(|| Finding::new(o.subject(), format!("points {points} without a customer")))
}

fn read_lines(conn: &Connection) -> rusqlite::Result<Vec<Line>> {
    rows(
        conn,
        "SELECT l.order_id, l.quantity, l.unit_price, COALESCE(v.recipe, 'missing')
         FROM order_lines l LEFT JOIN recipe_versions v ON v.id = l.recipe_version",
        |r| {
            let recipe = r.get::<_, String>(3)?;
            Ok(Line {
                order: r.get(0)?,
                quantity: r.get(1)?,
                unit_price: r.get(2)?,
                recipe: serde_json::from_str(&recipe).map_err(|e| e.to_string()),
            })
        },
    )
}

/// Each order's stock moves, by order and kind ("sale", or "cancel" for any other reason).
type Moved = HashMap<(String, &'static str), BTreeMap<String, i64>>;

fn read_moves(conn: &Connection) -> rusqlite::Result<Moved> {
    let mut moved = Moved::new();
    for (order, reason, ingredient, delta) in rows(
        conn,
        "SELECT order_id, reason, ingredient_id, delta FROM stock_moves WHERE order_id IS NOT NULL",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )? {
        let reason: &'static str = if reason == "sale" { "sale" } else { "cancel" };
        *moved.entry((order, reason)).or_default().entry(ingredient).or_insert(0) += delta;
    }
    Ok(moved)
}

/// Each order with what its lines and the ledger say of it.
fn sold(orders: &[Order], lines: &[Line], moved: &Moved) -> Vec<Sold> {
    let mut by_order: HashMap<&str, (i64, i64, BTreeMap<String, i64>)> = HashMap::new();
    for line in lines {
        let (total, count, needs) = by_order.entry(line.order.as_str()).or_default();
        *total += line.quantity * line.unit_price;
        *count += 1;
        for (ingredient, per_unit) in line.recipe.iter().flatten() {
            *needs.entry(ingredient.clone()).or_insert(0) += per_unit * line.quantity;
        }
    }
    let take = |id: &str, kind| moved.get(&(id.to_owned(), kind)).cloned().unwrap_or_default();
    orders
        .iter()
        .map(|order| {
            let (line_total, line_count, needs) = by_order.get(order.id.as_str()).cloned().unwrap_or_default();
            Sold {
                order: order.clone(),
                line_total,
                line_count,
                expected: needs
                    .into_iter()
                    .filter(|(_, q)| *q != 0)
                    .map(|(k, v)| (k, -v))
                    .collect(),
                sold: take(&order.id, "sale"),
                returned: take(&order.id, "cancel"),
            }
        })
        .collect()
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    let orders = audit.facts.orders(audit.conn)?;
    audit.report.orders = orders.len() as u64;
    let lines = read_lines(audit.conn)?;
    audit.report.check_rows(&lines, LINE_RULES);
    let moved = read_moves(audit.conn)?;
    audit.report.check_rows(&sold(orders, &lines, &moved), ORDER_RULES);
    Ok(())
}

fn rules() -> Vec<&'static str> {
    names(LINE_RULES).chain(names(ORDER_RULES)).collect()
}
