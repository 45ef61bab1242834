//! Customers, their loyalty points and the CRM activity log.

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
#[cfg(test)]
use crate::error::ShopError;
use crate::ids::{CustomerId, OrderId};
use crate::order::Order;
use crate::values::{Timestamp, parse_name};

/// Longest email address, in characters as sent.
pub const EMAIL_LEN_MAX: usize = 254;
/// Longest phone number, in characters as sent.
pub const PHONE_LEN_MAX: usize = 32;
/// The name an anonymised customer keeps: the accounting records stay, the person does not.
pub const ANONYMISED_NAME: &str = "Anonymised customer";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub points: u64,
    pub anonymised: bool,
    pub created_at: Timestamp,
}

/// What happened to a customer, newest last in an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Created,
    Updated,
    OrderPlaced,
    OrderCancelled,
    Anonymised,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Created => "created",
            ActivityKind::Updated => "updated",
            ActivityKind::OrderPlaced => "order_placed",
            ActivityKind::OrderCancelled => "order_cancelled",
            ActivityKind::Anonymised => "anonymised",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "created" => ActivityKind::Created,
            "updated" => ActivityKind::Updated,
            "order_placed" => ActivityKind::OrderPlaced,
            "order_cancelled" => ActivityKind::OrderCancelled,
            "anonymised" => ActivityKind::Anonymised,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Activity {
    pub kind: ActivityKind,
    pub order_id: Option<OrderId>,
    pub points_delta: i64,
    pub created_at: Timestamp,
}

/// Everything the shop holds about one person (a subject access request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerExport {
    pub customer: Customer,
    pub orders: Vec<Order>,
    pub activity: Vec<Activity>,
    pub exported_at: Timestamp,
}

/// Whether an order may name this customer (`found` is what the shop holds under the id): a
/// field error on `customer_id` for one the shop does not know or has anonymised.
pub fn order_customer_error(found: Option<&Customer>) -> Option<crate::error::FieldError> {
    let message = match found {
        None => "no such customer",
        Some(c) if c.anonymised => "this customer was anonymised",
        Some(_) => return None,
    };
    Some(crate::error::FieldError::new("customer_id", message))
}

/// Contact details, parsed. Empty strings mean "none".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFields {
    pub name: Option<String>,
    /// `None`: leave as it is; `Some(None)`: clear it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub phone: Option<Option<String>>,
}

/// Keeps "absent" and "null" apart on the internal wire: an absent field is `None`, a null
/// one `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Only called for `Some`: `None` is skipped.
    pub fn serialize<S: Serializer>(value: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        value.as_ref().expect("None is skipped").serialize(s)
    }

    /// Only called when the field is there: it is then a change, to null or to a value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// Lengths count the characters as sent (see [`crate::values::parse_name`]).
fn parse_email(raw: &str) -> Result<Option<String>, String> {
    let sent_len = raw.chars().count();
    let raw = raw.trim();
    if raw.is_empty() && sent_len <= EMAIL_LEN_MAX {
        return Ok(None);
    }
    let valid = sent_len <= EMAIL_LEN_MAX
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(raw.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
    if valid {
        Ok(Some(raw.to_owned()))
    } else {
        Err("not an email address".into())
    }
}

fn parse_phone(raw: &str) -> Result<Option<String>, String> {
    let sent_len = raw.chars().count();
    let raw = raw.trim();
    if raw.is_empty() && sent_len <= PHONE_LEN_MAX {
        return Ok(None);
    }
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    let valid =
        sent_len <= PHONE_LEN_MAX && digits >= 3 && raw.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if valid {
        Ok(Some(raw.to_owned()))
    } else {
        Err("not a phone number: digits, spaces and + - ( ) . only".into())
    }
}

impl CustomerFields {
    /// Parses contact details into `errors` (every bad field). For a new customer the name is
    /// required; for a patch every field is optional but at least one must be given. `None`
    /// is a field the request lacks (or had with the wrong JSON type, already reported); an
    /// empty email or phone clears it.
    pub fn parse(
        errors: &mut FieldErrors,
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        is_new: bool,
    ) -> Option<Self> {
        let name = if is_new { errors.require("name", name) } else { name };
        let fields = CustomerFields {
            name: name.and_then(|n| errors.check("name", parse_name(n))),
            email: email.and_then(|e| errors.check("email", parse_email(e))),
            phone: phone.and_then(|p| errors.check("phone", parse_phone(p))),
        };
        if !errors.is_empty() {
            return None;
        }
        if !is_new && fields == CustomerFields::default() {
            errors.push("", "name at least one field to change");
            return None;
        }
        Some(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl CustomerFields {
        fn try_parse(
            name: Option<&str>,
            email: Option<&str>,
            phone: Option<&str>,
            is_new: bool,
        ) -> Result<Self, ShopError> {
            FieldErrors::collect(|e| CustomerFields::parse(e, name, email, phone, is_new))
        }
    }

    #[test]
    fn emails_and_phones_are_checked_and_blank_means_none() {
        let ok =
            CustomerFields::try_parse(Some("Ada"), Some(" ada@example.org "), Some("+44 20 7946 0958"), true).unwrap();
        assert_eq!(ok.email, Some(Some("ada@example.org".into())));
        assert!(CustomerFields::try_parse(Some("Ada"), Some("ada@"), None, true).is_err());
        assert!(CustomerFields::try_parse(Some("Ada"), None, Some("call me"), true).is_err());
        let blank = CustomerFields::try_parse(Some("Ada"), Some(""), None, true).unwrap();
        assert_eq!(blank.email, Some(None));
    }

    #[test]
    fn a_new_customer_needs_a_name_and_a_patch_needs_a_field() {
        assert!(CustomerFields::try_parse(None, Some("a@b.co"), None, true).is_err());
        assert!(CustomerFields::try_parse(None, None, None, false).is_err());
    }
}

#[cfg(test)]
mod wire_tests {
    use super::CustomerFields;

    #[test]
    fn customer_fields_keep_leaving_alone_apart_from_clearing_on_the_wire() {
        for fields in [
            CustomerFields::default(),
            CustomerFields {
                name: Some("Ada".into()),
                email: Some(None),
                phone: Some(Some("0123".into())),
            },
        ] {
            let wire = serde_json::to_string(&fields).unwrap();
            assert_eq!(serde_json::from_str::<CustomerFields>(&wire).unwrap(), fields, "{wire}");
        }
    }
}
