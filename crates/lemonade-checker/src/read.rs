//! Reads a [`FinalState`] from a stopped shop's data folder: the monolith's `lemonade.db`, or
//! a cluster's four databases. The folder is opened as `lemonade check` opens it
//! (`lemonade_store::audit::open_folder`: read-only; a cluster's databases attached to one
//! connection with the monolith's tables as views over them), everything is read in one
//! snapshot with the store's own read functions (`lemonade_store::sql::*`) where it has
//! them, and the audit runs in that same snapshot.
//!
//! What the databases do not hold is not read: the breakers' states live in the processes
//! (`FinalState::breakers` is `None` for a cluster; a monolith has none), and so do the read
//! pools and the answers to final reads (`None`, not judged), and the points rule
//! is the caller's ([`ReadOptions::minor_units_per_point`]).

use std::collections::BTreeMap;
use std::path::Path;

use lemonade_domain::ShopError;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::ports::{OrderFilter, PAGE_LIMIT_MAX, Page, PageRequest};
use lemonade_domain::saga::Destination;
use lemonade_domain::values::Timestamp;
use lemonade_store::audit::{Layout, OpenShop, audit_in_snapshot, open_folder};
use lemonade_store::db::OpenError;
use lemonade_store::sql;

use crate::op::Line;
use crate::state::{
    AuditViolation, Baseline, CustomerState, FinalState, HeldReservation, IngredientState, LedgerMove, OpenSaga,
    OrderState, PointsEntry, UndeliveredEvent,
};

/// Most rows of one kind (ledger moves, orders, customers, activity entries, ...) read; a
/// bigger shop is refused rather than held in memory.
pub const ROWS_MAX: usize = 1_000_000;

/// Why a state cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The folder holds no shop, or a database cannot be opened (the audit's refusals).
    #[error("{0}")]
    Open(#[from] OpenError),
    /// A read failed, or a stored row cannot be read back.
    #[error("reading {what}: {error}")]
    Shop { what: &'static str, error: ShopError },
    #[error("reading {what}: {error}")]
    Sqlite { what: &'static str, error: rusqlite::Error },
    #[error("the shop holds more than {ROWS_MAX} {what}")]
    TooMany { what: &'static str },
    #[error("{what}: {detail}")]
    Stored { what: &'static str, detail: String },
}

/// What the caller knows that the databases do not.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The points rule the shop ran with (`--minor-units-per-point`).
    pub minor_units_per_point: u64,
    /// What existed before the run ([`read_baseline`] before it; the default: nothing).
    pub baseline: Baseline,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            minor_units_per_point: lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT,
            baseline: Baseline::default(),
        }
    }
}

/// What the shop in `data` holds now (the last ledger move, the orders), to be given as
/// [`ReadOptions::baseline`] when the run is over. Safe while the shop runs, between runs of
/// work (a read-only snapshot).
pub fn read_baseline(data: &Path) -> Result<Baseline, ReadError> {
    let shop = open_folder(data, &|_| Ok(()))?;
    in_snapshot(&shop, |shop| {
        let moves = read_moves(shop)?;
        Ok(Baseline {
            ledger_seq: moves.last().map_or(0, |(seq, _, _)| *seq),
            ingredients: all("the ingredients", |page| sql::stock::list(&shop.conn, page))?
                .into_iter()
                .map(|i| i.id.as_str().to_owned())
                .collect(),
            orders: read_orders(shop, &BTreeMap::new(), false)?
                .into_iter()
                .map(|o| o.id)
                .collect(),
        })
    })
}

/// Reads the final state of the shop in `data` (see the module's documentation).
pub fn read_final_state(data: &Path, options: &ReadOptions) -> Result<FinalState, ReadError> {
    let shop = open_folder(data, &|_| Ok(()))?;
    in_snapshot(&shop, |shop| {
        let cluster = shop.layout == Layout::Cluster;
        let (customers, points_ledger) = read_customers(shop)?;
        let audit = audit_in_snapshot(shop)?;
        Ok(FinalState {
            layout: shop.layout,
            minor_units_per_point: options.minor_units_per_point,
            ingredients: read_ingredients(shop, &options.baseline)?,
            orders: read_orders(shop, &read_keys(shop)?, true)?,
            customers,
            points_ledger: Some(points_ledger),
            open_sagas: if cluster { read_open_sagas(shop)? } else { Vec::new() },
            held_reservations: if cluster { read_held(shop)? } else { Vec::new() },
            undelivered_events: if cluster { read_undelivered(shop)? } else { Vec::new() },
            breakers: if cluster { None } else { Some(Vec::new()) },
            read_pools: None,
            final_reads: None,
            audit: Some(
                audit
                    .violations
                    .into_iter()
                    .map(|v| AuditViolation {
                        rule: v.rule.to_owned(),
                        subject: v.subject,
                        detail: v.detail,
                    })
                    .collect(),
            ),
            baseline: options.baseline.clone(),
        })
    })
}

/// Runs `read` inside one read transaction of `shop`.
fn in_snapshot<T>(shop: &OpenShop, read: impl FnOnce(&OpenShop) -> Result<T, ReadError>) -> Result<T, ReadError> {
    let sqlite = |what| move |error| ReadError::Sqlite { what, error };
    shop.conn.execute_batch("BEGIN").map_err(sqlite("a snapshot"))?;
    let read = read(shop);
    shop.conn.execute_batch("COMMIT").map_err(sqlite("a snapshot"))?;
    read
}

fn shop_error(what: &'static str) -> impl Fn(ShopError) -> ReadError {
    move |error| ReadError::Shop { what, error }
}

/// Every item of a paged list of the store, page by page, at most [`ROWS_MAX`].
fn all<T>(
    what: &'static str,
    mut page: impl FnMut(&PageRequest) -> Result<Page<T>, ShopError>,
) -> Result<Vec<T>, ReadError> {
    let mut items = Vec::new();
    let mut request = PageRequest {
        limit: PAGE_LIMIT_MAX,
        cursor: None,
    };
    loop {
        let read = page(&request).map_err(shop_error(what))?;
        items.extend(read.items);
        if items.len() > ROWS_MAX {
            return Err(ReadError::TooMany { what });
        }
        match read.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return Ok(items),
        }
    }
}

/// The whole ledger in write order: (seq, ingredient, move).
fn read_moves(shop: &OpenShop) -> Result<Vec<(i64, String, LedgerMove)>, ReadError> {
    let mut moves = all("the ledger", |page| sql::stock::list_moves(&shop.conn, None, page))?
        .into_iter()
        .map(|m| {
            let seq = m.id.as_str().parse::<i64>().map_err(|e| ReadError::Stored {
                what: "the ledger",
                detail: format!("move id {} is not a sequence number ({e})", m.id.as_str()),
            })?;
            Ok((
                seq,
                m.ingredient_id.as_str().to_owned(),
                LedgerMove {
                    seq,
                    kind: m.reason,
                    delta: m.delta,
                    order: m.order_id.map(|o| o.as_str().to_owned()),
                    note: m.note,
                    at_ms: m.created_at.millis(),
                },
            ))
        })
        .collect::<Result<Vec<_>, ReadError>>()?;
    moves.sort_by_key(|(seq, _, _)| *seq);
    Ok(moves)
}

/// Every ingredient: on-hand at the baseline, the moves after it, on-hand now.
fn read_ingredients(shop: &OpenShop, baseline: &Baseline) -> Result<Vec<IngredientState>, ReadError> {
    let stored = all("the ingredients", |page| sql::stock::list(&shop.conn, page))?;
    let mut by_id: BTreeMap<String, IngredientState> = stored
        .into_iter()
        .map(|i| {
            let id = i.id.as_str().to_owned();
            (
                id.clone(),
                IngredientState {
                    id,
                    initial_on_hand: 0,
                    moves: Vec::new(),
                    final_on_hand: i.on_hand as i64,
                },
            )
        })
        .collect();
    for (seq, ingredient, m) in read_moves(shop)? {
        let Some(state) = by_id.get_mut(&ingredient) else {
            return Err(ReadError::Stored {
                what: "the ledger",
                detail: format!("move {seq} is of ingredient {ingredient}, which does not exist"),
            });
        };
        if seq <= baseline.ledger_seq {
            state.initial_on_hand += m.delta;
        } else {
            state.moves.push(m);
        }
    }
    Ok(by_id.into_values().collect())
}

/// The idempotency key of each order that has one: the monolith's `idempotency_keys`, the
/// coordinator's saga log (which holds the public keys of the distributed mode).
fn read_keys(shop: &OpenShop) -> Result<BTreeMap<String, String>, ReadError> {
    let limit = ROWS_MAX as u32 + 1;
    let keys = match shop.layout {
        Layout::Monolith => sql::idempotency::order_keys(&shop.conn, limit),
        Layout::Cluster => sql::sagas::order_keys(&shop.conn, limit),
    }
    .map_err(shop_error("the idempotency keys"))?;
    if keys.len() > ROWS_MAX {
        return Err(ReadError::TooMany {
            what: "idempotency keys",
        });
    }
    Ok(keys
        .into_iter()
        .map(|(order, key)| (order.as_str().to_owned(), key))
        .collect())
}

/// Every order, oldest id first, with its key and (when `consumption`) what its lines take.
fn read_orders(
    shop: &OpenShop,
    keys: &BTreeMap<String, String>,
    consumption: bool,
) -> Result<Vec<OrderState>, ReadError> {
    let filter = OrderFilter::default();
    let mut orders = all("the orders", |page| sql::orders::list(&shop.conn, &filter, page))?;
    orders.reverse();
    orders
        .into_iter()
        .map(|o| {
            let id = o.id.as_str().to_owned();
            let consumption = if consumption {
                sql::orders::needs_of(&shop.conn, &o.id)
                    .map_err(shop_error("an order's recipes"))?
                    .into_iter()
                    .map(|(i, q)| (i.as_str().to_owned(), q))
                    .collect()
            } else {
                BTreeMap::new()
            };
            Ok(OrderState {
                key: keys.get(&id).cloned(),
                customer: o.customer_id.map(|c| c.as_str().to_owned()),
                status: o.status,
                total: o.total.minor(),
                points: o.points,
                lines: o
                    .lines
                    .into_iter()
                    .map(|l| Line {
                        product: l.product_id.as_str().to_owned(),
                        quantity: l.quantity,
                    })
                    .collect(),
                consumption,
                updated_at_ms: o.updated_at.millis(),
                id,
            })
        })
        .collect()
}

/// Every customer, and every customer's activity (the points ledger).
fn read_customers(shop: &OpenShop) -> Result<(Vec<CustomerState>, Vec<PointsEntry>), ReadError> {
    let customers = all("the customers", |page| sql::crm::list(&shop.conn, None, page))?;
    let mut ledger = Vec::new();
    for c in &customers {
        let id: &CustomerId = &c.id;
        for a in sql::crm::activity(&shop.conn, id).map_err(shop_error("a customer's activity"))? {
            ledger.push(PointsEntry {
                customer: id.as_str().to_owned(),
                kind: a.kind,
                order: a.order_id.as_ref().map(|o: &OrderId| o.as_str().to_owned()),
                delta: a.points_delta,
                at_ms: a.created_at.millis(),
            });
        }
        if ledger.len() > ROWS_MAX {
            return Err(ReadError::TooMany {
                what: "activity entries",
            });
        }
    }
    let customers = customers
        .into_iter()
        .map(|c| CustomerState {
            id: c.id.as_str().to_owned(),
            points: c.points,
            erased: c.anonymised,
        })
        .collect();
    Ok((customers, ledger))
}

/// The coordinator's sagas still running or compensating.
fn read_open_sagas(shop: &OpenShop) -> Result<Vec<OpenSaga>, ReadError> {
    let sagas = sql::sagas::unfinished(&shop.conn, Timestamp(i64::MAX), ROWS_MAX as u32 + 1)
        .map_err(shop_error("the unfinished sagas"))?;
    if sagas.len() > ROWS_MAX {
        return Err(ReadError::TooMany { what: "open sagas" });
    }
    Ok(sagas
        .into_iter()
        .map(|s| OpenSaga {
            order: s.order_id.as_str().to_owned(),
            phase: s.state.phase().as_str().to_owned(),
            updated_at_ms: s.updated_at.millis(),
        })
        .collect())
}

/// The stock service's reservations still held (`sql::reservations::held_list`).
fn read_held(shop: &OpenShop) -> Result<Vec<HeldReservation>, ReadError> {
    let held =
        sql::reservations::held_list(&shop.conn, ROWS_MAX as u32 + 1).map_err(shop_error("the held reservations"))?;
    if held.len() > ROWS_MAX {
        return Err(ReadError::TooMany {
            what: "held reservations",
        });
    }
    Ok(held
        .into_iter()
        .map(|(order, expires_at)| HeldReservation {
            order: order.as_str().to_owned(),
            expires_at_ms: expires_at.millis(),
        })
        .collect())
}

/// The orders service's outbox events not delivered, to each destination.
fn read_undelivered(shop: &OpenShop) -> Result<Vec<UndeliveredEvent>, ReadError> {
    let mut events = Vec::new();
    for to in Destination::ALL {
        let waiting =
            sql::events::undelivered(&shop.conn, to, ROWS_MAX as u32 + 1).map_err(shop_error("the outbox"))?;
        events.extend(waiting.into_iter().map(|e| UndeliveredEvent {
            node: "orders".to_owned(),
            id: e.id,
            destination: to.as_str().to_owned(),
        }));
        if events.len() > ROWS_MAX {
            return Err(ReadError::TooMany {
                what: "undelivered events",
            });
        }
    }
    Ok(events)
}
