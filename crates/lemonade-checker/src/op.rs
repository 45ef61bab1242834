//! The operations a client of the shop performs, as a history records them, and what the
//! shop's answer told the client.

use lemonade_domain::order::OrderStatus;
use serde::{Deserialize, Serialize};

/// Most bytes of one text of an operation (an id, a key, a note, a name). Longer than any the
/// shop accepts (ids are at most 64), so a refused request can still be recorded.
pub const TEXT_BYTES_MAX: usize = 1_024;

/// Most lines of one recorded order (the shop accepts 50; more may be sent to be refused).
pub const LINES_MAX: usize = 1_000;

/// One line of an order as a client asked for it: a product and how many units of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Line {
    pub product: String,
    pub quantity: u64,
}

/// What a client asked the shop to do (Jepsen's `f` and `value`). Ids are as sent, not
/// parsed: a history may record requests the shop refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Op {
    /// `POST /orders`, with its `Idempotency-Key` if one was sent.
    PlaceOrder {
        key: Option<String>,
        customer: Option<String>,
        lines: Vec<Line>,
    },
    /// `POST /orders/{order}/cancel`.
    CancelOrder { order: String },
    /// `POST /ingredients/{ingredient}/restock`, `quantity` in the ingredient's unit.
    Restock {
        ingredient: String,
        quantity: u64,
        note: Option<String>,
    },
    /// `POST /ingredients/{ingredient}/waste`.
    Waste {
        ingredient: String,
        quantity: u64,
        note: Option<String>,
    },
    /// `POST /ingredients/{ingredient}/count`: on-hand becomes `on_hand`.
    Count {
        ingredient: String,
        on_hand: u64,
        note: Option<String>,
    },
    /// `POST /customers`.
    CreateCustomer { name: String },
    /// `PATCH /customers/{customer}`.
    UpdateCustomer { customer: String },
    /// `DELETE /customers/{customer}` (an erasure).
    EraseCustomer { customer: String },
    /// `GET /orders/{order}`: a read, which changes nothing; what it saw is judged against
    /// what was acknowledged before it was asked (reads-see-writes).
    ReadOrder { order: String },
}

impl Op {
    /// The operation's name, as Jepsen's `f` (`place_order`, `cancel_order`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::PlaceOrder { .. } => "place_order",
            Op::CancelOrder { .. } => "cancel_order",
            Op::Restock { .. } => "restock",
            Op::Waste { .. } => "waste",
            Op::Count { .. } => "count",
            Op::CreateCustomer { .. } => "create_customer",
            Op::UpdateCustomer { .. } => "update_customer",
            Op::EraseCustomer { .. } => "erase_customer",
            Op::ReadOrder { .. } => "read_order",
        }
    }

    /// Whether the operation asks the shop to change something (every one but a read): only
    /// those have an outcome to resolve when it is unknown.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::ReadOrder { .. })
    }

    /// What is too big in this operation for the checker to hold ([`TEXT_BYTES_MAX`],
    /// [`LINES_MAX`]), if anything.
    pub(crate) fn too_big(&self) -> Option<String> {
        let texts: Vec<&str> = match self {
            Op::PlaceOrder { key, customer, lines } => {
                if lines.len() > LINES_MAX {
                    return Some(format!("{} lines, at most {LINES_MAX}", lines.len()));
                }
                key.iter()
                    .chain(customer)
                    .map(String::as_str)
                    .chain(lines.iter().map(|l| l.product.as_str()))
                    .collect()
            }
            Op::CancelOrder { order } | Op::ReadOrder { order } => vec![order],
            Op::Restock { ingredient, note, .. }
            | Op::Waste { ingredient, note, .. }
            | Op::Count { ingredient, note, .. } => {
                std::iter::once(ingredient.as_str()).chain(note.as_deref()).collect()
            }
            Op::CreateCustomer { name } => vec![name],
            Op::UpdateCustomer { customer } | Op::EraseCustomer { customer } => vec![customer],
        };
        texts
            .into_iter()
            .find(|t| t.len() > TEXT_BYTES_MAX)
            .map(|t| format!("a text of {} bytes, at most {TEXT_BYTES_MAX}", t.len()))
    }
}

/// The public API request that performs an [`Op`] (`Op::request`): what a workload sends,
/// whatever it sends it with (the simulation's router, the chaos run's HTTP client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Under `/api/v1`, with the ids in it: `/orders`, `/orders/{id}/cancel`, ...
    pub path: String,
    /// The JSON body, if the request has one.
    pub body: Option<serde_json::Value>,
    /// The `Idempotency-Key` header, if sent.
    pub key: Option<String>,
}

impl Op {
    /// The request of the public API that performs this operation (the customer update sets
    /// a phone number: the history records only whom it changed).
    pub fn request(&self) -> ApiRequest {
        use serde_json::json;
        let post = |path: String, body: serde_json::Value| ApiRequest {
            method: "POST",
            path,
            body: Some(body),
            key: None,
        };
        match self {
            Op::PlaceOrder { key, customer, lines } => {
                let lines: Vec<serde_json::Value> = lines
                    .iter()
                    .map(|l| json!({"product_id": l.product, "quantity": l.quantity}))
                    .collect();
                let body = match customer {
                    Some(c) => json!({"customer_id": c, "lines": lines}),
                    None => json!({"lines": lines}),
                };
                ApiRequest {
                    key: key.clone(),
                    ..post("/orders".into(), body)
                }
            }
            Op::CancelOrder { order } => ApiRequest {
                method: "POST",
                path: format!("/orders/{order}/cancel"),
                body: None,
                key: None,
            },
            Op::Restock {
                ingredient,
                quantity,
                note,
            } => post(
                format!("/ingredients/{ingredient}/restock"),
                json!({"quantity": quantity, "note": note}),
            ),
            Op::Waste {
                ingredient,
                quantity,
                note,
            } => post(
                format!("/ingredients/{ingredient}/waste"),
                json!({"quantity": quantity, "note": note}),
            ),
            Op::Count {
                ingredient,
                on_hand,
                note,
            } => post(
                format!("/ingredients/{ingredient}/count"),
                json!({"on_hand": on_hand, "note": note}),
            ),
            Op::CreateCustomer { name } => post("/customers".into(), json!({"name": name})),
            Op::UpdateCustomer { customer } => ApiRequest {
                method: "PATCH",
                path: format!("/customers/{customer}"),
                body: Some(json!({"phone": "+44 7700 900123"})),
                key: None,
            },
            Op::EraseCustomer { customer } => ApiRequest {
                method: "DELETE",
                path: format!("/customers/{customer}"),
                body: None,
                key: None,
            },
            Op::ReadOrder { order } => ApiRequest {
                method: "GET",
                path: format!("/orders/{order}"),
                body: None,
                key: None,
            },
        }
    }
}

/// An order as an answer described it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTold {
    pub id: String,
    pub status: OrderStatus,
}

/// What the shop's answer told the client, as far as the checker needs it; empty when no
/// answer came (a timeout).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    /// The HTTP status of the answer, if one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The order the answer is about (a placement's, a cancel's): its id and status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderTold>,
    /// The customer an answer is about (the one created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The ledger move an adjustment wrote: its id, the move's sequence number in digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_id: Option<String>,
    /// A refusal's problem type or an error's text, for the reader of a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Told {
    /// What a bare HTTP status tells.
    pub fn status(http_status: u16) -> Told {
        Told {
            http_status: Some(http_status),
            ..Told::default()
        }
    }

    /// What an answer about `order` tells.
    pub fn order(http_status: u16, id: impl Into<String>, status: OrderStatus) -> Told {
        Told {
            http_status: Some(http_status),
            order: Some(OrderTold { id: id.into(), status }),
            ..Told::default()
        }
    }

    /// Nothing: no answer came.
    pub fn nothing() -> Told {
        Told::default()
    }

    /// What an answer of the shop's public API told: its status, and from its JSON body
    /// (`null` when it had none or it was not JSON) the order (`id` and `status`), the
    /// customer (`id` of a body with a `name`), the ledger move (`move.id`) and a problem's
    /// `type`. `None`: no answer came.
    pub fn of_answer(answer: Option<(u16, &serde_json::Value)>) -> Told {
        let Some((status, body)) = answer else {
            return Told::nothing();
        };
        let order = body["status"]
            .as_str()
            .and_then(OrderStatus::parse)
            .zip(body["id"].as_str())
            .map(|(status, id)| OrderTold {
                id: id.to_owned(),
                status,
            });
        Told {
            http_status: Some(status),
            order,
            customer: body["id"]
                .as_str()
                .filter(|_| body.get("name").is_some())
                .map(str::to_owned),
            move_id: body["move"]["id"].as_str().map(str::to_owned),
            error: body["type"].as_str().map(str::to_owned),
        }
    }

    /// What is too big here for the checker to hold, if anything.
    pub(crate) fn too_big(&self) -> Option<String> {
        [
            self.order.as_ref().map(|o| o.id.as_str()),
            self.customer.as_deref(),
            self.move_id.as_deref(),
            self.error.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find(|t| t.len() > TEXT_BYTES_MAX)
        .map(|t| format!("a text of {} bytes, at most {TEXT_BYTES_MAX}", t.len()))
    }
}
